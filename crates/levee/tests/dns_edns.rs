//! EDNS queries as `dig` sends them, the way resolvers do: with a cookie
//! (a client cookie alone, then the server cookie levee gave back), without
//! one, with a small or a large UDP size, with DO. Each is asked several
//! times: the first answer is made the full way, the next ones are replayed
//! from the stored reply with the cookie written per query
//! (crates/levee-dns/src/replay.rs), and all must read the same to dig.

#[path = "dns/common.rs"]
mod common;
mod support;

use common::status;

type Server = common::Single;

/// levee serving `example.test` with `www A` and `big TXT` (four strings
/// of 200 bytes: more than 512 bytes on the wire), cookies on, and the
/// rate limit at `rrl_rate` a second per address (0: off).
fn start(rrl_rate: u32) -> Server {
    let big = vec![format!("\\\"{}\\\"", "a".repeat(200)); 4].join(" ");
    common::single(
        &format!("threads = 1\nrrl_rate = {rrl_rate}\nrrl_burst = 1\nrrl_prefix_v4 = 32"),
        &format!(r#"records = ["ns1 A 192.0.2.53", "www A 192.0.2.80", "big TXT {big}"]"#),
    )
}

/// The COOKIE dig shows in the OPT pseudosection, in hex, when dig found
/// its own client cookie in it ("(good)").
fn good_cookie(out: &str) -> Option<&str> {
    let line = out.lines().find(|l| l.starts_with("; COOKIE: "))?;
    let (hex, verdict) = line["; COOKIE: ".len()..].split_once(' ')?;
    (verdict.trim() == "(good)").then_some(hex)
}

/// The OPT pseudosection's flags line (`; EDNS: version: 0, flags: ...`).
fn edns_line(out: &str) -> &str {
    out.lines()
        .find(|l| l.starts_with("; EDNS: "))
        .unwrap_or_default()
}

const A: &str = "levee_dns_queries_total{type=\"A\",result=\"noerror\"}";

#[test]
fn cookies_come_back_good_and_a_returned_server_cookie_is_never_limited() {
    // One answer a second per address: only a client that proves its
    // address with levee's server cookie gets more.
    let s = start(1);
    let before = s.metric(A);
    let first = s.dig(&["+cookie", "+norec", "www.example.test", "A"]);
    assert_eq!(status(&first), "NOERROR", "{first}");
    assert!(first.contains("192.0.2.80"), "{first}");
    let cookie = good_cookie(&first).unwrap_or_else(|| panic!("no good cookie: {first}"));
    // The client cookie (8 bytes) and levee's server cookie (16).
    assert_eq!(cookie.len(), 48, "{first}");
    let returned = format!("+cookie={cookie}");
    let mut asked = 1;
    for i in 0..30 {
        let out = s.dig(&[&returned, "+ignore", "+norec", "www.example.test", "A"]);
        asked += 1;
        assert_eq!(status(&out), "NOERROR", "query {i}: {out}");
        assert!(!out.contains(" tc"), "query {i} limited: {out}");
        assert!(out.contains("192.0.2.80"), "query {i}: {out}");
        let again = good_cookie(&out).unwrap_or_else(|| panic!("query {i}: {out}"));
        assert_eq!(again[..16], cookie[..16], "the same client cookie");
    }
    // Every answer counted, replayed or not.
    assert_eq!(
        s.metric(A) - before,
        f64::from(asked),
        "{}",
        s.levee.stderr()
    );
}

#[test]
fn nocookie_small_and_large_sizes_and_do_are_answered_alike_every_time() {
    let s = start(0);
    for i in 0..3 {
        let out = s.dig(&["+nocookie", "+norec", "www.example.test", "A"]);
        assert_eq!(status(&out), "NOERROR", "{i}: {out}");
        assert!(out.contains("192.0.2.80"), "{i}: {out}");
        assert!(!out.contains("COOKIE"), "none asked, none given: {out}");
        assert!(edns_line(&out).contains("version: 0"), "{i}: {out}");

        let out = s.dig(&["+dnssec", "+norec", "www.example.test", "A"]);
        assert!(out.contains("192.0.2.80"), "{i}: {out}");
        // RFC 3225: DO comes back as it was asked.
        assert!(edns_line(&out).contains("flags: do"), "{i}: {out}");
        assert!(good_cookie(&out).is_some(), "{i}: {out}");
        let out = s.dig(&["+norec", "www.example.test", "A"]);
        assert!(!edns_line(&out).contains("flags: do"), "{i}: {out}");
    }
    let truncated = "levee_dns_truncated_total";
    let before = s.metric(truncated);
    for i in 0..3 {
        // 512 bytes cannot take the TXT: truncated, and dig, told not to
        // retry over TCP, shows TC and no answer.
        let out = s.dig(&[
            "+bufsize=512",
            "+ignore",
            "+norec",
            "big.example.test",
            "TXT",
        ]);
        assert_eq!(status(&out), "NOERROR", "{i}: {out}");
        assert!(out.contains(" tc"), "{i}: {out}");
        assert!(!out.contains("aaaa"), "{i}: {out}");
        // 1232 bytes can, every time.
        let out = s.dig(&[
            "+bufsize=1232",
            "+ignore",
            "+norec",
            "big.example.test",
            "TXT",
        ]);
        assert!(!out.contains(" tc"), "{i}: {out}");
        assert_eq!(out.matches(&"a".repeat(200)).count(), 4, "{i}: {out}");
        // Truncated at 512, dig asks again over TCP and gets it all.
        let out = s.dig(&["+bufsize=512", "+norec", "big.example.test", "TXT"]);
        assert!(
            out.contains("Truncated, retrying in TCP mode"),
            "{i}: {out}"
        );
        assert_eq!(out.matches(&"a".repeat(200)).count(), 4, "{i}: {out}");
    }
    assert_eq!(s.metric(truncated) - before, 6.0);
}
