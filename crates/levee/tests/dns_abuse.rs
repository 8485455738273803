//! levee's DNS server against bad input, with `dig` and raw sockets as
//! clients: malformed packets (UDP and TCP), queries for other zones, ANY,
//! AXFR from an address that is not a secondary, and a flood from one
//! prefix. Each gets the right RCODE or a rate-limited answer, never a
//! crash; a normal client is answered throughout.

#[path = "dns/common.rs"]
mod common;
mod support;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use common::{addresses, dig, status};
use support::{metric, poll, random_bytes};

type Server = common::Single;

fn start() -> Server {
    common::single(
        "rrl_rate = 20\nrrl_burst = 20\nrrl_prefix_v4 = 32",
        r#"secondaries = "127.0.0.1"
records = ["ns1 A 192.0.2.53", "www A 192.0.2.80", "@ TXT \"hello\""]"#,
    )
}

/// A query for `name` of type `t` in wire form (test traffic only).
fn query(id: u16, name: &str, t: u16) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&t.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    q
}

fn alive(s: &Server) {
    assert_eq!(
        addresses("127.0.0.1", s.dns, "www.example.test", "A"),
        ["192.0.2.80"],
        "levee stopped answering:\n{}",
        s.levee.stderr()
    );
}

#[test]
fn malformed_packets_get_formerr_or_nothing_and_never_a_crash() {
    let s = start();
    alive(&s);
    let udp = UdpSocket::bind("127.0.0.1:0").expect("bind");
    udp.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let target = ("127.0.0.1", s.dns);
    // A header that reads as a query with a cut question: FORMERR, same id.
    let mut cut = query(0xBEEF, "www.example.test", 1);
    cut.truncate(20);
    udp.send_to(&cut, target).expect("send");
    let mut buf = [0u8; 512];
    let (n, _) = udp.recv_from(&mut buf).expect("FORMERR comes back");
    assert_eq!((&buf[..2], buf[3] & 0x0f, n), (&[0xBE, 0xEF][..], 1, 12));
    // Random bytes, runts and responses: whatever comes back is a
    // response, and levee lives.
    for i in 0..300u64 {
        let mut p = random_bytes((i as usize % 80) + 1, i);
        if i % 3 == 0 {
            let n = p.len().min(2);
            p[..n].fill(0);
        }
        udp.send_to(&p, target).expect("send");
    }
    while let Ok((n, _)) = udp.recv_from(&mut buf) {
        assert!(n >= 12 && buf[2] & 0x80 != 0, "only responses come back");
    }
    // A compression loop in the question.
    let mut looped = query(7, "a", 1);
    looped.truncate(12);
    looped.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
    udp.send_to(&looped, target).expect("send");
    // Over TCP: a length that promises more than comes, then garbage.
    let mut tcp = TcpStream::connect(target).expect("connect");
    tcp.write_all(&[0x00, 0x20, 1, 2, 3]).expect("write");
    drop(tcp);
    let mut tcp = TcpStream::connect(target).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    tcp.write_all(&[0x00, 0x05, 0xff, 0xff, 0xff, 0xff, 0xff])
        .expect("write");
    let mut rest = Vec::new();
    let _ = tcp.read_to_end(&mut rest);
    alive(&s);
    assert!(
        metric(
            s.admin,
            "levee_dns_queries_total{type=\"other\",result=\"formerr\"}"
        )
        .unwrap_or(0.0)
            >= 1.0
    );
}

#[test]
fn other_zones_any_and_unauthorised_transfers_get_their_rcodes() {
    let s = start();
    alive(&s);
    let out = dig("127.0.0.1", s.dns, &["+norec", "www.example.com", "A"]);
    assert_eq!(status(&out), "REFUSED", "{out}");
    let out = dig("127.0.0.1", s.dns, &["+rec", "example.test", "A"]);
    assert!(!out.contains(" ra"), "no recursion offered: {out}");
    assert_eq!(status(&out), "NOERROR", "{out}");
    let out = dig("127.0.0.1", s.dns, &["nope.example.test", "A"]);
    assert_eq!(status(&out), "NXDOMAIN", "{out}");
    assert!(out.contains("SOA"), "{out}");
    let out = dig("127.0.0.1", s.dns, &["+short", "example.test", "ANY"]);
    assert!(out.contains("\"RFC8482\""), "{out}");
    let out = dig("127.0.0.1", s.dns, &["-c", "CH", "version.bind", "TXT"]);
    assert_eq!(status(&out), "REFUSED", "{out}");
    // AXFR from an address that is not a secondary.
    let out = dig(
        "127.0.0.1",
        s.dns,
        &["-b", "127.0.0.9", "example.test", "AXFR"],
    );
    assert!(out.contains("Transfer failed"), "{out}");
    // From the secondary's address (no key configured), it is served.
    let out = dig("127.0.0.1", s.dns, &["example.test", "AXFR"]);
    assert_eq!(out.matches("\tSOA\t").count(), 2, "{out}");
    assert!(out.contains("192.0.2.80"), "{out}");
    assert_eq!(
        metric(s.admin, "levee_dns_transfers_total{result=\"refused\"}"),
        Some(1.0)
    );
    alive(&s);
}

#[test]
fn a_flood_from_one_prefix_is_rate_limited_and_others_are_answered() {
    let s = start();
    alive(&s);
    let flood = UdpSocket::bind("127.0.0.9:0").expect("bind 127.0.0.9");
    flood
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let q = query(1, "www.example.test", 1);
    for _ in 0..400 {
        flood.send_to(&q, ("127.0.0.1", s.dns)).expect("send");
    }
    let (mut full, mut truncated) = (0, 0);
    let mut buf = [0u8; 512];
    while let Ok((n, _)) = flood.recv_from(&mut buf) {
        if n >= 12 && buf[2] & 0x02 != 0 {
            truncated += 1;
        } else {
            full += 1;
        }
    }
    // The burst (20) plus what the rate refills while the flood is sent;
    // the bound is loose for a loaded machine, far below 400.
    assert!((20..150).contains(&full), "{full} full answers");
    assert!(truncated > 0, "every 2nd limited answer slips (TC)");
    assert!(
        full + truncated < 300,
        "most are dropped: {full} + {truncated}"
    );
    // Another address is answered meanwhile, and the flooded one over TCP.
    alive(&s);
    let out = dig(
        "127.0.0.1",
        s.dns,
        &["+tcp", "+short", "-b", "127.0.0.9", "www.example.test", "A"],
    );
    assert_eq!(out.trim(), "192.0.2.80", "{out}");
    let dropped = poll(Duration::from_secs(5), || {
        metric(
            s.admin,
            "levee_dns_queries_total{type=\"A\",result=\"dropped\"}",
        )
        .filter(|n| *n > 100.0)
    });
    assert!(dropped.is_some());
}
