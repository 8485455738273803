//! Who the client is, behind trusted proxies and in front of none; and
//! the forwarded fields levee writes for each case (proxy/headers.rs).

use std::net::IpAddr;

use levee_config::{ForwardedHeader, TrustedProxies};

use super::*;
use crate::proxy::headers::{Forwarding, upstream_request};

fn head(fields: &str) -> RequestHead {
    crate::h1::test_request(&format!(
        "GET /x HTTP/1.1\r\nHost: app.test\r\n{fields}\r\n"
    ))
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn trust(nets: &[&str], header: ForwardedHeader) -> Trust {
    Trust::new(&TrustedProxies {
        networks: nets.iter().map(|n| n.parse().expect("net")).collect(),
        header,
    })
    .expect("some networks")
}

/// The balancers of these tests: 10.0.0.0/8 and 2001:db8:f::/48.
fn lbs() -> Trust {
    trust(
        &["10.0.0.0/8", "2001:db8:f::/48"],
        ForwardedHeader::XForwardedFor,
    )
}

fn resolved(fields: &str, peer: &str, t: Option<&Trust>) -> Origin {
    resolve(&head(fields), ip(peer), false, t)
}

#[test]
fn an_untrusted_peer_is_the_client_whatever_it_says() {
    let t = lbs();
    for trust in [None, Some(&t)] {
        let o = resolved(
            "X-Forwarded-For: 10.1.1.1\r\nX-Forwarded-Proto: https\r\nForwarded: for=10.1.1.1;proto=https\r\n",
            "203.0.113.5",
            trust,
        );
        assert_eq!(o, Origin::direct(ip("203.0.113.5"), false));
    }
}

#[test]
fn x_forwarded_for_is_read_from_the_right_past_trusted_proxies() {
    let t = lbs();
    let client = |fields: &str| resolved(fields, "10.0.0.2", Some(&t)).ip;
    // The balancer appended the address it saw.
    assert_eq!(
        client("X-Forwarded-For: 198.51.100.9\r\n"),
        ip("198.51.100.9")
    );
    // A spoofed value on the left is not believed: the rightmost untrusted is.
    assert_eq!(
        client("X-Forwarded-For: 1.2.3.4, 198.51.100.9\r\n"),
        ip("198.51.100.9")
    );
    // Trusted hops are passed over, across several fields, with ports and brackets.
    assert_eq!(
        client(
            "X-Forwarded-For: 1.2.3.4, 198.51.100.9:5555\r\nX-Forwarded-For: 10.9.9.9, [2001:db8:f::3]:80\r\n"
        ),
        ip("198.51.100.9")
    );
    assert_eq!(
        client("X-Forwarded-For: [2001:db8::7]\r\n"),
        ip("2001:db8::7")
    );
    assert_eq!(
        client("X-Forwarded-For: ::ffff:192.0.2.8\r\n"),
        ip("192.0.2.8")
    );
    // All trusted: the leftmost.
    assert_eq!(
        client("X-Forwarded-For: 10.3.3.3, 10.4.4.4\r\n"),
        ip("10.3.3.3")
    );
    // Garbage ends the walk at the last good hop, never beyond it.
    assert_eq!(
        client("X-Forwarded-For: 198.51.100.9, garbage, 10.4.4.4\r\n"),
        ip("10.4.4.4")
    );
    assert_eq!(
        client("X-Forwarded-For: 198.51.100.9, unknown\r\n"),
        ip("10.0.0.2")
    );
    assert_eq!(client("X-Forwarded-For: \r\n"), ip("10.0.0.2"));
    // No field: the proxy is its own client (a health check, say).
    assert_eq!(client(""), ip("10.0.0.2"));
    let o = resolved("X-Forwarded-For: 198.51.100.9\r\n", "10.0.0.2", Some(&t));
    assert_eq!(o.proxy, Some(ip("10.0.0.2")));
}

#[test]
fn the_scheme_comes_from_x_forwarded_proto_of_a_trusted_proxy() {
    let t = lbs();
    let https = |fields: &str, listener_tls: bool| {
        resolve(&head(fields), ip("10.0.0.2"), listener_tls, Some(&t)).https
    };
    assert!(https("X-Forwarded-Proto: https\r\n", false));
    assert!(https("X-Forwarded-Proto: HTTPS\r\n", false));
    assert!(!https("X-Forwarded-Proto: http\r\n", true));
    // The proxy nearest levee wrote the last value.
    assert!(https("X-Forwarded-Proto: http, https\r\n", false));
    // Nothing usable: levee's own listener decides.
    assert!(!https("X-Forwarded-Proto: gopher\r\n", false));
    assert!(https("", true));
}

#[test]
fn forwarded_names_the_client_and_its_scheme() {
    let t = trust(&["10.0.0.0/8"], ForwardedHeader::Forwarded);
    let o = |fields: &str| resolved(fields, "10.0.0.2", Some(&t));
    let got = o("Forwarded: for=198.51.100.9;proto=https;by=10.0.0.2\r\n");
    assert_eq!((got.ip, got.https), (ip("198.51.100.9"), true));
    let got = o(
        "Forwarded: for=1.2.3.4, for=\"[2001:db8::7]:4711\";proto=http, for=10.5.5.5;proto=https\r\n",
    );
    assert_eq!((got.ip, got.https), (ip("2001:db8::7"), false));
    let got = o("Forwarded: for=\"198.51.100.9:80\";proto=https\r\nForwarded: For=10.5.5.5\r\n");
    assert_eq!((got.ip, got.https), (ip("198.51.100.9"), true));
    // A quoted comma does not split an element.
    let got = o("Forwarded: for=198.51.100.9;ext=\"a,b\";proto=https\r\n");
    assert_eq!((got.ip, got.https), (ip("198.51.100.9"), true));
    // unknown, obfuscated or missing `for` ends the walk.
    assert_eq!(
        o("Forwarded: for=198.51.100.9, for=unknown\r\n").ip,
        ip("10.0.0.2")
    );
    assert_eq!(
        o("Forwarded: for=198.51.100.9, for=_hidden\r\n").ip,
        ip("10.0.0.2")
    );
    assert_eq!(
        o("Forwarded: for=198.51.100.9, proto=https\r\n").ip,
        ip("10.0.0.2")
    );
    // Only the configured field is read.
    assert_eq!(o("X-Forwarded-For: 198.51.100.9\r\n").ip, ip("10.0.0.2"));
    let xff = lbs();
    let got = resolved(
        "Forwarded: for=198.51.100.9;proto=https\r\n",
        "10.0.0.2",
        Some(&xff),
    );
    assert_eq!((got.ip, got.https), (ip("10.0.0.2"), false));
}

fn forwarded(fields: &str, origin: Origin) -> String {
    let fwd = Forwarding {
        origin,
        preserve_host: true,
        server_authority: "127.0.0.1:9",
        upgrade: None,
        up: crate::shape::Upward::none(origin.ip),
    };
    String::from_utf8(upstream_request(&head(fields), &fwd)).expect("text")
}

const SENT: &str = "X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\n\
    X-Forwarded-Host: evil.test\r\nX-Real-IP: 1.2.3.4\r\nForwarded: for=1.2.3.4\r\n";

#[test]
fn an_untrusted_client_cannot_set_the_forwarded_fields() {
    let out = forwarded(SENT, Origin::direct(ip("203.0.113.5"), false));
    for line in [
        "X-Forwarded-For: 203.0.113.5\r\n",
        "X-Real-IP: 203.0.113.5\r\n",
        "X-Forwarded-Proto: http\r\n",
        "X-Forwarded-Host: app.test\r\n",
    ] {
        assert!(out.contains(line), "{line:?} not in\n{out}");
    }
    for absent in ["1.2.3.4", "evil.test", "Forwarded:", "https"] {
        assert!(!out.contains(absent), "{absent:?} in\n{out}");
    }
}

#[test]
fn a_trusted_proxy_fields_are_passed_and_appended_to() {
    let origin = Origin {
        ip: ip("1.2.3.4"),
        https: true,
        proxy: Some(ip("10.0.0.2")),
    };
    let out = forwarded(SENT, origin);
    for line in [
        "X-Forwarded-For: 1.2.3.4, 10.0.0.2\r\n",
        "X-Real-IP: 1.2.3.4\r\n",
        "X-Forwarded-Proto: https\r\n",
        "X-Forwarded-Host: evil.test\r\n",
        "Forwarded: for=1.2.3.4, for=10.0.0.2\r\n",
    ] {
        assert!(out.contains(line), "{line:?} not in\n{out}");
    }
    assert_eq!(out.matches("X-Real-IP").count(), 1, "{out}");
    // A proxy that named the client only in `Forwarded`: the chain starts
    // with the client all the same.
    let out = forwarded("Forwarded: for=1.2.3.4\r\n", origin);
    assert!(
        out.contains("X-Forwarded-For: 1.2.3.4, 10.0.0.2\r\n"),
        "{out}"
    );
    let v6 = Origin {
        proxy: Some(ip("2001:db8:f::2")),
        ..origin
    };
    assert!(forwarded(SENT, v6).contains("Forwarded: for=1.2.3.4, for=\"[2001:db8:f::2]\"\r\n"));
}
