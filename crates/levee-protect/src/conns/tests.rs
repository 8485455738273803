use super::*;

fn limits(total: u32, per_ip: u32, per_net: u32) -> ConnLimits {
    ConnLimits::new(&ListenerProtect {
        max_connections: total,
        max_connections_per_ip: per_ip,
        max_connections_per_prefix: per_net,
        ..ListenerProtect::default()
    })
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

#[test]
fn listener_limit_refuses_beyond_and_frees_on_close() {
    let t = ConnTable::new("test");
    let l = limits(2, 0, 0);
    let a = t.admit(ip("192.0.2.1"), &l).expect("first");
    let _b = t.admit(ip("192.0.2.2"), &l).expect("second");
    assert_eq!(
        t.admit(ip("192.0.2.3"), &l).err(),
        Some(Refusal::ListenerFull)
    );
    assert_eq!(t.open(), 2);
    drop(a);
    assert!(t.admit(ip("192.0.2.3"), &l).is_ok());
    assert_eq!(t.open(), 1, "the permit above was dropped at once");
}

#[test]
fn per_ip_and_per_prefix() {
    let t = ConnTable::new("test");
    let l = limits(0, 2, 3);
    let _a = t.admit(ip("192.0.2.1"), &l).expect("1");
    let _b = t
        .admit(ip("::ffff:192.0.2.1"), &l)
        .expect("same client, second");
    assert_eq!(t.admit(ip("192.0.2.1"), &l).err(), Some(Refusal::PerIp));
    let _c = t.admit(ip("192.0.2.2"), &l).expect("same /24, third");
    assert_eq!(t.admit(ip("192.0.2.3"), &l).err(), Some(Refusal::PerPrefix));
    let _d = t.admit(ip("192.0.3.1"), &l).expect("other /24");
    let _e = t.admit(ip("2001:db8::1"), &l).expect("v6");
    let counts: Vec<(&str, u64)> = t.refused().collect();
    assert_eq!(
        counts,
        [
            ("denied", 0),
            ("listener_full", 0),
            ("per_ip", 1),
            ("per_prefix", 1),
            ("banned", 0)
        ]
    );
    drop((_a, _b, _c, _d, _e));
    assert_eq!(t.tracked(), 0, "entries go when their last connection does");
    assert_eq!(t.open(), 0);
}

#[test]
fn access_list_refuses_first() {
    let t = ConnTable::new("test");
    let mut p = ListenerProtect::default();
    p.access.deny.push("192.0.2.0/24".parse().expect("net"));
    let l = ConnLimits::new(&p);
    assert_eq!(t.admit(ip("192.0.2.7"), &l).err(), Some(Refusal::Denied));
    assert!(t.admit(ip("198.51.100.7"), &l).is_ok());
    assert_eq!(t.open(), 0);
}

#[test]
fn permits_balance_across_threads() {
    let t = ConnTable::new("test");
    let l = limits(1_000_000, 1_000_000, 0);
    std::thread::scope(|s| {
        for i in 0..4u8 {
            let (t, l) = (&t, &l);
            s.spawn(move || {
                for _ in 0..10_000 {
                    let p = t
                        .admit(IpAddr::from([10, 0, 0, i]), l)
                        .expect("under limits");
                    drop(p);
                }
            });
        }
    });
    assert_eq!((t.open(), t.tracked()), (0, 0));
}
