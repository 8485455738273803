use super::*;

struct Req {
    peer: IpAddr,
    path: &'static [u8],
    query: &'static [u8],
    headers: Vec<(&'static str, &'static [u8])>,
}

impl Request for Req {
    fn peer(&self) -> IpAddr {
        self.peer
    }
    fn path(&self) -> &[u8] {
        self.path
    }
    fn query(&self) -> &[u8] {
        self.query
    }
    fn header(&self, name: &str, f: &mut dyn FnMut(&[u8]) -> bool) {
        for (n, v) in &self.headers {
            if *n == name && f(v) {
                return;
            }
        }
    }
}

fn req(peer: &str, query: &'static [u8]) -> Req {
    Req {
        peer: peer.parse().expect("ip"),
        path: b"/redeem",
        query,
        headers: vec![],
    }
}

/// The key of a request that keys unambiguously.
trait Unambiguous {
    fn k(&self, r: &Req) -> Option<u64>;
}

impl Unambiguous for KeySpec {
    fn k(&self, r: &Req) -> Option<u64> {
        self.key(r).expect("unambiguous")
    }
}

fn spec(parts: &[&str]) -> KeySpec {
    let parts: Vec<KeyPart> = parts
        .iter()
        .map(|p| match *p {
            "ip" => KeyPart::ClientIp { v4: 32, v6: 128 },
            "ip24" => KeyPart::ClientIp { v4: 24, v6: 64 },
            "path" => KeyPart::Path,
            "code" => KeyPart::Query("code".into()),
            "key" => KeyPart::Header("x-key".into()),
            "sid" => KeyPart::Cookie("sid".into()),
            other => panic!("{other}"),
        })
        .collect();
    KeySpec::new(&parts)
}

#[test]
fn query_codes_are_decoded_and_missing_ones_are_not_counted() {
    let s = spec(&["code"]);
    let a = s.k(&req("192.0.2.1", b"code=ABC")).expect("has code");
    assert_eq!(s.k(&req("192.0.2.9", b"x=1&code=AB%43")), Some(a));
    assert_eq!(s.k(&req("192.0.2.9", b"co%64e=ABC&x=other")), Some(a));
    assert_ne!(s.k(&req("192.0.2.1", b"code=ABD")), Some(a));
    assert_eq!(s.k(&req("192.0.2.1", b"other=ABC")), None);
    assert_eq!(s.k(&req("192.0.2.1", b"")), None);
    let empty = s
        .k(&req("192.0.2.1", b"code="))
        .expect("empty value counts");
    assert_eq!(s.k(&req("192.0.2.1", b"code")), Some(empty));
    assert_eq!(
        s.k(&req("192.0.2.1", b"code=a+b")),
        s.k(&req("192.0.2.1", b"code=a%20b"))
    );
    assert_eq!(
        s.k(&req("192.0.2.1", b"code=%4")),
        s.k(&req("192.0.2.1", b"code=%254"))
    );
}

#[test]
fn client_ip_prefixes() {
    let full = spec(&["ip"]);
    let net = spec(&["ip24"]);
    let k = |s: &KeySpec, ip| s.k(&req(ip, b"")).expect("always present");
    assert_ne!(k(&full, "192.0.2.1"), k(&full, "192.0.2.2"));
    assert_eq!(k(&net, "192.0.2.1"), k(&net, "192.0.2.200"));
    assert_ne!(k(&net, "192.0.2.1"), k(&net, "192.0.3.1"));
    assert_eq!(k(&full, "192.0.2.1"), k(&full, "::ffff:192.0.2.1"));
    assert_eq!(k(&net, "2001:db8:0:1::1"), k(&net, "2001:db8:0:1::2"));
    assert_ne!(k(&net, "2001:db8:0:1::1"), k(&net, "2001:db8:0:2::1"));
}

#[test]
fn headers_cookies_and_combinations() {
    let mut r = req("192.0.2.1", b"");
    r.headers = vec![("cookie", b"a=1; sid=xyz"), ("x-key", b"k1")];
    let sid = spec(&["sid"]);
    let both = spec(&["ip", "key"]);
    let k1 = both.k(&r).expect("both present");
    let s1 = sid.k(&r).expect("cookie present");
    r.headers = vec![("cookie", b"a=2"), ("cookie", b"sid=xyz"), ("x-key", b"k2")];
    assert_eq!(sid.k(&r), Some(s1));
    assert_ne!(both.k(&r), Some(k1));
    r.headers = vec![];
    assert_eq!(both.k(&r), None);
    assert_eq!(sid.k(&r), None);
    let p = spec(&["path", "ip"]);
    assert!(p.k(&r).is_some());
}

#[test]
fn every_spelling_of_the_parameter_counts_alike() {
    let s = spec(&["code"]);
    let a = s.k(&req("192.0.2.1", b"code=X")).expect("has code");
    for query in [
        &b"c%6fde=X"[..],
        b"C%4FDE=X",
        b"CODE=X",
        b"Code=%58",
        b"a=1;code=X",
        b"a=1&code=X;b=2",
    ] {
        assert_eq!(s.k(&req("192.0.2.1", query)), Some(a), "{query:?}");
    }
    // `;` separates pairs: the value ends there.
    assert_eq!(s.k(&req("192.0.2.1", b"code=X;junk")), Some(a));
}

#[test]
fn a_parameter_given_twice_is_refused_whatever_the_spelling() {
    let s = spec(&["code"]);
    for query in [
        &b"code=A&code=B"[..],
        b"code=A&code=A",
        b"code=A;code=B",
        b"code=A&CODE=B",
        b"code=A&c%6fde=B",
        b"code&code=B",
    ] {
        assert_eq!(
            s.key(&req("192.0.2.1", query)),
            Err(KeyError::RepeatedParameter),
            "{query:?}"
        );
    }
    // Other parameters may repeat.
    assert!(s.k(&req("192.0.2.1", b"x=1&x=2&code=A")).is_some());
}
