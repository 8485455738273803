//! Tiers in order, weights within a tier, and the near band.

use super::*;

fn profile(name: &str, f: impl FnOnce(&mut levee_config::Mirror)) -> Profile {
    let mut m = levee_config::Mirror::new(name);
    m.http = Some(format!("http://{name}"));
    f(&mut m);
    Profile::new(m)
}

fn client(ip: &str, country: &[u8; 2], continent: &[u8; 2], asn: u32, loc: (f64, f64)) -> Client {
    Client {
        ip: ip.parse().expect("literal"),
        geo: Whereabouts {
            country: Some(*country),
            continent: Some(*continent),
            asn: Some(asn),
            location: Some(loc),
        },
    }
}

#[test]
fn tiers_in_order() {
    let ps = [
        profile("any", |_| {}),
        profile("near", |m| m.location = Some((48.0, 11.0))),
        profile("far", |m| m.location = Some((-33.0, 151.0))),
        profile("continent", |m| m.continent = Some("EU".into())),
        profile("country", |m| m.country = Some("DE".into())),
        profile("asn", |m| m.asn = vec![64500]),
        profile("net", |m| {
            m.networks = vec!["10.1.0.0/16".parse().expect("literal")]
        }),
    ];
    let refs: Vec<&Profile> = ps.iter().collect();
    let c = client("10.1.2.3", b"DE", b"EU", 64500, (52.5, 13.4));
    let order: Vec<&str> = rank(&refs, &c, 10, &mut Rng::new(7))
        .iter()
        .map(|r| refs[r.index].name())
        .collect();
    assert_eq!(order[..5], ["net", "asn", "country", "continent", "near"]);
    // "far" is beyond the near band, so it ranks with those of no location.
    let t = tiers(&refs, &c);
    assert_eq!(t[2].tier, Tier::Anywhere);
    assert_eq!(t[1].tier, Tier::Near);
}

#[test]
fn weights_spread_the_load_within_a_tier() {
    let ps = [
        profile("heavy", |m| {
            m.country = Some("DE".into());
            m.weight = 300;
        }),
        profile("light", |m| {
            m.country = Some("DE".into());
            m.weight = 100;
        }),
        profile("other", |m| m.country = Some("FR".into())),
    ];
    let refs: Vec<&Profile> = ps.iter().collect();
    let c = client("192.0.2.1", b"DE", b"EU", 1, (0.0, 0.0));
    let mut rng = Rng::new(42);
    let mut heavy = 0;
    for _ in 0..4000 {
        let r = rank(&refs, &c, 1, &mut rng);
        assert_ne!(refs[r[0].index].name(), "other", "the country tier wins");
        if r[0].index == 0 {
            heavy += 1;
        }
    }
    // Expect 3000 of 4000; a wide margin keeps the test honest, not flaky.
    assert!((2700..3300).contains(&heavy), "{heavy}");
    let all = rank(&refs, &c, 10, &mut rng);
    assert_eq!(all.len(), 3);
    assert_eq!(refs[all[2].index].name(), "other");
}

#[test]
fn no_candidates_no_choice() {
    let c = client("192.0.2.1", b"DE", b"EU", 1, (0.0, 0.0));
    assert!(rank(&[], &c, 3, &mut Rng::new(1)).is_empty());
    let mut r = Rng::new(3);
    assert_eq!(r.below(0), 0);
    assert!((0..1000).all(|_| r.below(5) < 5));
}
