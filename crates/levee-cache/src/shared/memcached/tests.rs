use super::*;

#[test]
fn hosts_are_scheme_and_authority_with_their_slash() {
    assert_eq!(host_of(b"http://site/c/img/"), Some(&b"http://site/"[..]));
    assert_eq!(host_of(b"https://site/"), Some(&b"https://site/"[..]));
    assert_eq!(
        host_of(b"http://site"),
        None,
        "no path: no host list to read"
    );
    assert_eq!(host_of(b"site/a"), None);
}

#[test]
fn generations_hold_their_number_and_items() {
    let (generation, items) = parse_gen(b"42 kabc tdef").expect("a generation");
    assert_eq!(generation, 42);
    assert_eq!(items, [&b"kabc"[..], &b"tdef"[..]]);
    assert_eq!(parse_gen(b"7").map(|(g, i)| (g, i.len())), Some((7, 0)));
    assert!(parse_gen(b"x kabc").is_none(), "not a number");
    assert!(parse_gen(b"").is_none());
}

/// Consistent hashing: every key has a server, the servers share the keys,
/// and a server added moves only about its share of them.
#[test]
fn the_ring_spreads_keys_and_moves_few_when_a_server_joins() {
    let three: Vec<String> = (1..=3).map(|i| format!("10.0.0.{i}:11211")).collect();
    let mut four = three.clone();
    four.push("10.0.0.4:11211".into());
    let (a, b) = (Memcached::new(&three), Memcached::new(&four));
    let keys: Vec<u128> = (0..3000u32)
        .map(|i| crate::shared::hash128(format!("http://site/{i}").as_bytes()))
        .collect();
    let mut counts = [0usize; 3];
    let mut moved = 0;
    for &k in &keys {
        let s = a.server_for(k);
        counts[s] += 1;
        let t = b.server_for(k);
        if t != s {
            assert_eq!(t, 3, "a key only moves to the new server");
            moved += 1;
        }
    }
    for c in counts {
        assert!((600..=1400).contains(&c), "{counts:?}");
    }
    assert!((300..=1300).contains(&moved), "{moved} of 3000 moved");
    // The same names give the same ring on every member.
    let again = Memcached::new(&three);
    assert!(keys.iter().all(|&k| a.server_for(k) == again.server_for(k)));
}

/// A server that refuses connections fails at once and is then skipped
/// without a connect for a second.
#[tokio::test]
async fn a_refused_server_is_a_quick_error_then_skipped() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mc = Memcached::new(&[format!("127.0.0.1:{port}")]);
    let first = mc.get("{f}", 1, 2, Duration::from_secs(5)).await;
    assert!(
        matches!(&first, Err(McError::Call { source: Error::Connect(e), .. })
            if e.kind() == std::io::ErrorKind::ConnectionRefused),
        "{first:?}"
    );
    let second = mc.get("{f}", 1, 2, Duration::from_secs(5)).await;
    assert!(matches!(second, Err(McError::Down(_))), "{second:?}");
}
