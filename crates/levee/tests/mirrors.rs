//! The download redirector against real mirrors (docs/mirrors.md): nginx
//! instances on their own loopback addresses standing in for mirrors in
//! Germany (two), France and the US (its listing read over rsync), clients
//! placed by a GeoIP database built for the test.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use support::*;

#[test]
fn the_nearest_tier_wins_and_weights_spread_the_load() {
    let w = World::start("");
    let file = "/pub/releases/1.0/readme.txt";
    // Same country: only the two German mirrors, about 3:1 by weight.
    let mut count: HashMap<&str, u32> = HashMap::new();
    for _ in 0..120 {
        let (status, to) = w.sent(DE_CLIENT, file);
        assert_eq!(status, 302);
        *count.entry(to).or_default() += 1;
    }
    let (de1, de2) = (
        count.get("de1").copied().unwrap_or(0),
        count.get("de2").copied().unwrap_or(0),
    );
    assert_eq!(
        de1 + de2,
        120,
        "only German mirrors for a German client: {count:?}"
    );
    // Expect 90:30; the bounds are wide so a fair coin cannot fail them.
    assert!(
        de1 > de2 && de2 >= 10,
        "weights 300:100 spread the load: {count:?}"
    );
    // Country tier for France and the US (the US mirror scanned with rsync).
    assert_eq!(w.sent(FR_CLIENT, file), (302, "fr"));
    assert_eq!(w.sent(US_CLIENT, file), (302, "us"));
    // A file the French mirror lacks: the same continent, Germany.
    let (status, to) = w.sent(FR_CLIENT, "/pub/de-only.bin");
    assert_eq!(status, 302);
    assert!(to == "de1" || to == "de2", "{to}");
    // No mirror in Africa: the nearest by distance (Europe), never the US.
    for _ in 0..20 {
        let (status, to) = w.sent(MA_CLIENT, file);
        assert_eq!(status, 302);
        assert!(["de1", "de2", "fr"].contains(&to), "{to}");
    }
    // The ASN tier beats the distance: Cairo's AS has de2 in it.
    for _ in 0..10 {
        assert_eq!(w.sent(EG_CLIENT, file), (302, "de2"));
    }
    // A client in a mirror's preferred network goes there, whatever its country.
    assert_eq!(w.sent(NET_CLIENT, file), (302, "us"));
    // Unknown to GeoIP: any mirror that has the file.
    let (status, to) = w.sent(UNKNOWN_CLIENT, file);
    assert_eq!(status, 302);
    assert!(!to.is_empty());
}

#[test]
fn stale_copies_are_never_offered_and_small_or_unmirrored_files_are_local() {
    let w = World::start("");
    let fr = mirror_state(w.admin, "fr");
    assert_eq!(fr["stale"], 2, "one copy of another size, one older: {fr}");
    for _ in 0..20 {
        for stale in ["/pub/fr-stale.bin", "/pub/old-copy.bin"] {
            let (status, to) = w.sent(FR_CLIENT, stale);
            assert_eq!(status, 302);
            assert!(to == "de1" || to == "de2", "{stale} to {to}");
        }
    }
    // A client resuming with a range goes to a copy of the same size too.
    for _ in 0..10 {
        let (status, location) = get_from(FR_CLIENT, &w.url("/pub/fr-stale.bin"), &["-r", "100-"]);
        assert_eq!(status, 302);
        assert_ne!(which(&w.mirrors, &location), "fr");
    }
    // Small, excluded and unmirrored files come from levee itself.
    for (path, key) in [
        ("/pub/small.txt", "pub/small.txt"),
        (
            "/pub/releases/1.0/image.iso.asc",
            "pub/releases/1.0/image.iso.asc",
        ),
        ("/pub/only-local.bin", "pub/only-local.bin"),
    ] {
        let body = curl_bytes(DE_CLIENT, &w.url(path), &[]);
        assert_eq!(body, w.files[key], "{path} served locally");
    }
    // A directory is served locally (no index file there: 403), a missing file is 404.
    assert_eq!(w.sent(DE_CLIENT, "/pub/").0, 403);
    assert_eq!(w.sent(DE_CLIENT, "/pub/nothing.iso").0, 404);
    // curl -L follows the redirect and gets the same bytes.
    let got = curl_bytes(US_CLIENT, &w.url("/pub/data/a%20b.bin"), &["-L"]);
    assert_eq!(got, w.files["pub/data/a b.bin"]);
    let hits: Vec<(&str, usize)> = w
        .mirrors
        .iter()
        .map(|m| (m.name, m.hits("/pub/data/a%20b.bin")))
        .collect();
    assert!(hits[3].1 >= 1, "fetched from the US mirror: {hits:?}");
}

#[test]
fn a_killed_mirror_leaves_the_redirects_within_a_probe_interval() {
    let mut w = World::start("");
    let file = "/pub/releases/1.0/readme.txt";
    poll(Duration::from_secs(10), || {
        (w.sent(DE_CLIENT, file).1 == "de1").then_some(())
    })
    .expect("de1 is offered before it dies");
    let de1 = w.mirrors.remove(0);
    drop(de1);
    // probe_interval is 1 s (jitter 20 %), probe_timeout 2 s, one failure
    // takes it out; the deadline is generous for a loaded machine.
    let gone = poll(Duration::from_secs(15), || {
        (mirror_state(w.admin, "de1")["state"] == "down").then_some(())
    });
    assert!(
        gone.is_some(),
        "de1 still up: {}",
        mirror_state(w.admin, "de1")
    );
    for _ in 0..40 {
        let (status, to) = w.sent(DE_CLIENT, file);
        assert_eq!(
            (status, to),
            (302, "de2"),
            "no client is sent to the dead mirror"
        );
    }
}

#[test]
fn symlinks_redirect_to_the_path_mirrors_carry_and_never_leave_the_tree() {
    let w = World::start("");
    // The root is a symlinked virtual-host directory (MirrorBrain's failure):
    // the mirror path is the path inside the tree, nothing above it.
    let (status, location) = get_from(DE_CLIENT, &w.url("/pub/latest.iso"), &[]);
    assert_eq!(status, 302);
    assert!(
        location.ends_with("/pub/releases/1.0/image.iso"),
        "{location}"
    );
    assert!(
        !location.contains("vhosts") && !location.contains("storage"),
        "{location}"
    );
    // A symlinked directory inside the tree.
    let (_, location) = get_from(DE_CLIENT, &w.url("/pub/latest/readme.txt"), &[]);
    assert!(
        location.ends_with("/pub/releases/1.0/readme.txt"),
        "{location}"
    );
    // A link out of the tree is never followed.
    assert_eq!(w.sent(DE_CLIENT, "/pub/escape.txt").0, 403);
    // Served through the link, whole, when the client follows the redirect.
    let got = curl_bytes(DE_CLIENT, &w.url("/pub/latest/readme.txt"), &["-L"]);
    assert_eq!(got, w.files["pub/releases/1.0/readme.txt"]);
}

/// The body `curl` got from `url`, bound to `client`.
fn curl_bytes(client: &str, url: &str, extra: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("curl")
        .args(["-s", "--fail", "--interface", client])
        .args(extra)
        .arg(url)
        .output()
        .expect("run curl");
    assert!(out.status.success(), "curl {url} failed: {:?}", out.status);
    out.stdout
}
