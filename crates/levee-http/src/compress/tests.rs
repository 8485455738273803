use std::io::Read;

use levee_config::{Coding, Compress};

use super::{Encoder, edit_fields, offer, worth};
use crate::message::RequestHead;

fn request(text: &str) -> RequestHead {
    crate::h1::test_request(text)
}

fn offered(accept: &str) -> Option<Coding> {
    let req = request(&format!(
        "GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: {accept}\r\n\r\n"
    ));
    offer(&Compress::default(), &req)
}

#[test]
fn the_client_weights_come_first_then_the_server_order() {
    // Default preference: zstd, br, gzip.
    assert_eq!(offered("gzip, br, zstd"), Some(Coding::Zstd));
    assert_eq!(offered("gzip, deflate, br"), Some(Coding::Brotli));
    assert_eq!(offered("gzip;q=1, br;q=0.8"), Some(Coding::Gzip));
    assert_eq!(offered("br;q=0, gzip;q=0.001"), Some(Coding::Gzip));
    assert_eq!(offered("X-GZIP"), Some(Coding::Gzip));
    assert_eq!(offered("identity"), None);
    assert_eq!(offered(""), None);
    assert_eq!(offered("gzip;q=0"), None);
    assert_eq!(offered("*"), Some(Coding::Zstd));
    assert_eq!(offered("*;q=0, gzip"), Some(Coding::Gzip));
    assert_eq!(offered("*, zstd;q=0, br;q=0"), Some(Coding::Gzip));
    // A malformed weight leaves its entry out rather than guessing.
    assert_eq!(offered("br;q=2, gzip;q=0.5"), Some(Coding::Gzip));
    assert_eq!(offered("br;q=0.5555"), None);
    // Split over two fields.
    let req = request(
        "GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: br;q=0.1\r\nAccept-Encoding: gzip\r\n\r\n",
    );
    assert_eq!(offer(&Compress::default(), &req), Some(Coding::Gzip));
}

#[test]
fn heads_ranges_http10_and_silence_get_the_identity() {
    let rules = Compress::default();
    for text in [
        "HEAD / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nRange: bytes=0-1\r\nAccept-Encoding: gzip\r\n\r\n",
        "GET / HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    ] {
        assert_eq!(offer(&rules, &request(text)), None, "{text}");
    }
    let only_gzip = Compress {
        prefer: vec![Coding::Gzip],
        ..Compress::default()
    };
    let req = request("GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: br, zstd\r\n\r\n");
    assert_eq!(offer(&only_gzip, &req), None);
}

fn fields<'a>(list: &'a [(&'a str, &'a str)]) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
    list.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()))
}

#[test]
fn only_listed_types_long_enough_and_not_coded_are_worth_it() {
    let r = Compress::default();
    let html = [("Content-Type", "text/html; charset=utf-8")];
    assert!(worth(&r, 200, fields(&html)));
    assert!(worth(&r, 404, fields(&html)));
    for status in [101, 204, 206, 304] {
        assert!(!worth(&r, status, fields(&html)), "{status}");
    }
    assert!(!worth(&r, 200, fields(&[("Content-Type", "image/png")])));
    assert!(!worth(&r, 200, fields(&[])), "no type: unknown, left alone");
    let short = [("Content-Type", "text/css"), ("Content-Length", "255")];
    assert!(!worth(&r, 200, fields(&short)));
    let long = [("Content-Type", "text/css"), ("Content-Length", "256")];
    assert!(worth(&r, 200, fields(&long)));
    let coded = [("Content-Type", "text/css"), ("Content-Encoding", "gzip")];
    assert!(!worth(&r, 200, fields(&coded)));
    let identity = [
        ("Content-Type", "text/css"),
        ("Content-Encoding", "identity"),
    ];
    assert!(worth(&r, 200, fields(&identity)));
    let kept = [
        ("Content-Type", "text/css"),
        ("Cache-Control", "public, No-Transform"),
    ];
    assert!(!worth(&r, 200, fields(&kept)));
    let wild = Compress {
        types: vec!["text/*".into()],
        ..Compress::default()
    };
    assert!(worth(
        &wild,
        200,
        fields(&[("Content-Type", "TEXT/x-anything")])
    ));
    assert!(!worth(&wild, 200, fields(&[("Content-Type", "textual/x")])));
}

fn edited(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    edit_fields(fields(list), Coding::Brotli, |n, v| {
        out.push((
            String::from_utf8_lossy(n).into_owned(),
            String::from_utf8_lossy(v).into_owned(),
        ));
    });
    out
}

#[test]
fn compressing_weakens_the_etag_merges_vary_and_drops_the_length() {
    let out = edited(&[
        ("Content-Type", "text/html"),
        ("Content-Length", "9000"),
        ("ETag", "\"v1\""),
        ("Accept-Ranges", "bytes"),
        ("Vary", "Origin"),
    ]);
    let pairs: Vec<(&str, &str)> = out.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    assert_eq!(
        pairs,
        [
            ("Content-Type", "text/html"),
            ("ETag", "W/\"v1\""),
            ("Vary", "Origin, Accept-Encoding"),
            ("Content-Encoding", "br"),
        ]
    );
    let out = edited(&[("ETag", "W/\"v1\""), ("vary", "accept-encoding")]);
    assert_eq!(out[0].1, "W/\"v1\"");
    assert_eq!(out[1], ("vary".into(), "accept-encoding".into()));
    assert_eq!(out.len(), 3, "{out:?}");
    let out = edited(&[]);
    assert_eq!(out[1], ("Vary".into(), "Accept-Encoding".into()));
}

fn decode(coding: Coding, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        Coding::Gzip => {
            flate2::read::GzDecoder::new(bytes)
                .read_to_end(&mut out)
                .unwrap();
        }
        Coding::Brotli => {
            brotli::Decompressor::new(bytes, 4096)
                .read_to_end(&mut out)
                .unwrap();
        }
        Coding::Zstd => out = zstd::decode_all(bytes).unwrap(),
    }
    out
}

#[test]
fn each_piece_decodes_as_soon_as_it_is_sent() {
    let text: Vec<u8> = (0..2000)
        .flat_map(|i| format!("line {i} of a compressible body\n").into_bytes())
        .collect();
    for coding in Coding::ALL {
        let mut e = Encoder::new(coding, &Compress::default(), false).unwrap();
        let mut sent = Vec::new();
        for piece in text.chunks(7000) {
            let out = e.push(piece).unwrap();
            assert!(
                !out.is_empty(),
                "{coding:?}: flushed output for every piece"
            );
            sent.extend_from_slice(out);
        }
        sent.extend_from_slice(e.finish().unwrap());
        assert!(sent.len() < text.len() / 4, "{coding:?}: {}", sent.len());
        assert_eq!(decode(coding, &sent), text, "{coding:?}");
    }
    // Chunked: each step one chunk, the end the last chunk.
    let mut e = Encoder::new(Coding::Gzip, &Compress::default(), true).unwrap();
    let first = e.push(b"data: one\n\n").unwrap().to_vec();
    let size_line = first.split(|&b| b == b'\n').next().unwrap();
    let size = usize::from_str_radix(std::str::from_utf8(size_line).unwrap().trim(), 16).unwrap();
    assert_eq!(first.len(), size_line.len() + 1 + size + 2);
    assert!(e.finish().unwrap().ends_with(b"\r\n0\r\n\r\n"));
}
