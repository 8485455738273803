use super::*;

fn v2(cmd: u8, family: u8, body: &[u8]) -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    h.push(0x20 | cmd);
    h.push(family);
    h.extend_from_slice(&(body.len() as u16).to_be_bytes());
    h.extend_from_slice(body);
    h
}

/// Every proper prefix is incomplete and the whole parses to `want`.
fn split_reads(header: &[u8], want: Header) {
    let mut bytes = header.to_vec();
    bytes.extend_from_slice(b"GET / HTTP/1.1\r\n");
    for cut in 0..header.len() {
        assert_eq!(
            parse(&header[..cut]),
            Ok(Parsed::Incomplete),
            "prefix of {cut} bytes"
        );
    }
    assert_eq!(parse(&bytes), Ok(Parsed::Complete(want)));
}

#[test]
fn v1_tcp4_tcp6_and_unknown() {
    let line = b"PROXY TCP4 203.0.113.7 192.0.2.1 51234 443\r\n";
    split_reads(
        line,
        Header {
            len: line.len(),
            source: Some("203.0.113.7:51234".parse().unwrap()),
        },
    );
    let line = b"PROXY TCP6 2001:db8::7 2001:db8::1 8080 80\r\n";
    split_reads(
        line,
        Header {
            len: line.len(),
            source: Some("[2001:db8::7]:8080".parse().unwrap()),
        },
    );
    let line = b"PROXY UNKNOWN whatever follows\r\n";
    split_reads(
        line,
        Header {
            len: line.len(),
            source: None,
        },
    );
}

#[test]
fn v1_malformed_lines_are_errors() {
    for bad in [
        &b"PROXY TCP4 203.0.113.7 192.0.2.1 51234\r\n"[..],
        b"PROXY TCP4 2001:db8::1 192.0.2.1 1 2\r\n",
        b"PROXY TCP6 203.0.113.7 192.0.2.1 1 2\r\n",
        b"PROXY TCP4 203.0.113.7 192.0.2.1 65536 443\r\n",
        b"PROXY TCP4 203.0.113.7 192.0.2.1 0443 443\r\n",
        b"PROXY TCP4 203.0.113.7 192.0.2.1 +1 443\r\n",
        b"PROXY TCP4  203.0.113.7 192.0.2.1 1 443\r\n",
        b"PROXY UDP4 203.0.113.7 192.0.2.1 1 443\r\n",
        b"PROXY \r\n",
    ] {
        assert_eq!(
            parse(bad),
            Err(ProxyHeaderError::BadV1),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    // No CRLF within the longest allowed line.
    let long = [b"PROXY TCP4 ".as_slice(), &[b'1'; 200]].concat();
    assert_eq!(parse(&long), Err(ProxyHeaderError::BadV1));
}

#[test]
fn v2_inet_inet6_local_and_unspec() {
    let mut body = vec![203, 0, 113, 7, 192, 0, 2, 1];
    body.extend_from_slice(&51234u16.to_be_bytes());
    body.extend_from_slice(&443u16.to_be_bytes());
    body.extend_from_slice(&[0x04, 0, 2, b'h', b'i']); // a TLV, ignored
    let h = v2(1, 0x11, &body);
    split_reads(
        &h,
        Header {
            len: h.len(),
            source: Some("203.0.113.7:51234".parse().unwrap()),
        },
    );

    let mut body = Vec::new();
    body.extend_from_slice(&"2001:db8::7".parse::<Ipv6Addr>().unwrap().octets());
    body.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
    body.extend_from_slice(&[0x1f, 0x90, 0, 80]);
    let h = v2(1, 0x21, &body);
    split_reads(
        &h,
        Header {
            len: h.len(),
            source: Some("[2001:db8::7]:8080".parse().unwrap()),
        },
    );

    let h = v2(0, 0x00, &[]);
    split_reads(
        &h,
        Header {
            len: 16,
            source: None,
        },
    );
    let h = v2(1, 0x00, &[1, 2, 3]);
    split_reads(
        &h,
        Header {
            len: 19,
            source: None,
        },
    );
}

#[test]
fn v2_malformed_headers_are_errors() {
    // Version 1 in the binary form, an unknown command, a short address block.
    let mut h = v2(1, 0x11, &[0; 12]);
    h[12] = 0x11;
    assert_eq!(parse(&h), Err(ProxyHeaderError::BadV2));
    assert_eq!(parse(&v2(2, 0x11, &[0; 12])), Err(ProxyHeaderError::BadV2));
    assert_eq!(parse(&v2(1, 0x11, &[0; 11])), Err(ProxyHeaderError::BadV2));
    assert_eq!(parse(&v2(1, 0x21, &[0; 35])), Err(ProxyHeaderError::BadV2));
    assert_eq!(parse(&v2(1, 0x41, &[0; 12])), Err(ProxyHeaderError::BadV2));
    // Longer than levee takes: refused as soon as the length is known.
    let mut big = v2(1, 0x11, &[0; 12]);
    big[14..16].copy_from_slice(&2000u16.to_be_bytes());
    assert_eq!(parse(&big[..16]), Err(ProxyHeaderError::TooLong));
}

#[test]
fn anything_else_is_missing() {
    assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Err(ProxyHeaderError::Missing));
    assert_eq!(parse(b"\x16\x03\x01"), Err(ProxyHeaderError::Missing));
    assert_eq!(parse(b"PROX\n"), Err(ProxyHeaderError::Missing));
    assert_eq!(parse(b""), Ok(Parsed::Incomplete));
}

#[test]
fn encoded_headers_parse_back() {
    let pairs = [
        ("203.0.113.7:51234", "192.0.2.1:443"),
        ("[2001:db8::7]:8080", "[2001:db8::1]:80"),
        ("203.0.113.7:1", "[2001:db8::1]:80"),
    ];
    for (src, dst) in pairs {
        let (src, dst): (SocketAddr, SocketAddr) = (src.parse().unwrap(), dst.parse().unwrap());
        for version in [1, 2] {
            let header = encode(version, src, dst);
            let Ok(Parsed::Complete(h)) = parse(&header) else {
                panic!("v{version} {src} -> {dst}: {:?}", parse(&header));
            };
            assert_eq!(h.len, header.len());
            let got = h.source.unwrap();
            assert_eq!(got.port(), src.port());
            assert_eq!(got.ip().to_canonical(), src.ip());
        }
    }
    assert_eq!(
        encode(
            1,
            "10.0.0.1:5".parse().unwrap(),
            "10.0.0.2:80".parse().unwrap()
        ),
        b"PROXY TCP4 10.0.0.1 10.0.0.2 5 80\r\n"
    );
}
