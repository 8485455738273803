//! What the redirector says about a file: the Metalink (validated against
//! the RFC 5854 grammar with xmllint, and downloaded through by aria2c from
//! several mirrors with its hashes checked), the redirect's `Link` and
//! digest fields, and the mirror list in HTML and JSON.

mod support;

use std::process::Command;
use std::time::Duration;

use support::*;

const ISO: &str = "/pub/releases/1.0/image.iso";

/// The Metalink once the background hasher has done the file.
fn hashed_metalink(w: &World) -> String {
    let url = w.url(&format!("{ISO}.meta4"));
    let mut last = String::new();
    let doc = poll(Duration::from_secs(60), || {
        let out = Command::new("curl")
            .args(["-s", "--interface", DE_CLIENT, &url])
            .output()
            .ok()?;
        last = String::from_utf8_lossy(&out.stdout).into_owned();
        (last.contains("<hash type=\"sha-256\">") && last.contains("<pieces")).then(|| last.clone())
    });
    doc.unwrap_or_else(|| panic!("no hashes in the Metalink: {last}"))
}

fn sha256_hex(bytes: &[u8]) -> String {
    let dir = TempDir::new("sha");
    std::fs::write(dir.join("f"), bytes).expect("write");
    let out = Command::new("sha256sum")
        .arg(dir.join("f"))
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn the_metalink_validates_and_aria2c_downloads_through_it_from_several_mirrors() {
    let w = World::start("");
    let doc = hashed_metalink(&w);
    let dir = TempDir::new("meta4");
    let file = dir.join("image.iso.meta4");
    std::fs::write(&file, &doc).expect("write");
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mirrors/metalink4.rng");
    let out = Command::new("xmllint")
        .args(["--noout", "--relaxng", schema])
        .arg(&file)
        .output()
        .expect("xmllint not installed: run scripts/test");
    assert!(
        out.status.success(),
        "the Metalink does not validate: {}\n{doc}",
        String::from_utf8_lossy(&out.stderr)
    );
    let content = &w.files["pub/releases/1.0/image.iso"];
    assert!(doc.contains(&format!(
        "<hash type=\"sha-256\">{}</hash>",
        sha256_hex(content)
    )));
    assert!(doc.contains("<size>3145728</size>"));
    // Ranked for a German client: the German mirrors first, the origin last.
    let de = doc
        .find("location=\"de\" priority=\"1\"")
        .expect("a German mirror first");
    let us = doc.find("location=\"us\"").expect("the US mirror too");
    assert!(de < us);
    assert!(
        doc.contains(&format!("priority=\"5\">{}", w.url(ISO))),
        "{doc}"
    );

    let out = Command::new("aria2c")
        .args([
            "--split=4",
            "--min-split-size=1M",
            "--max-connection-per-server=1",
            "--console-log-level=warn",
            "--summary-interval=0",
            "--allow-overwrite=true",
            "--metalink-enable-unique-protocol=false",
            "-d",
        ])
        .arg(dir.join("out"))
        .arg("-M")
        .arg(&file)
        .output()
        .expect("aria2c not installed: run scripts/test");
    assert!(
        out.status.success(),
        "aria2c failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let got = std::fs::read(dir.join("out/image.iso")).expect("downloaded");
    assert!(got == *content, "aria2c's copy differs");
    let sources = w.mirrors.iter().filter(|m| m.hits(ISO) > 0).count();
    assert!(sources >= 2, "aria2c used {sources} mirror(s)");
}

#[test]
fn a_redirect_names_alternatives_and_the_digest() {
    let w = World::start("");
    hashed_metalink(&w);
    let out = Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null", "--interface", DE_CLIENT])
        .arg(w.url(ISO))
        .output()
        .expect("curl");
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(head.starts_with("http/1.1 302"), "{head}");
    let duplicates = head.lines().filter(|l| l.contains("rel=duplicate")).count();
    assert_eq!(duplicates, 3, "the other mirrors, best first: {head}");
    assert!(head.contains("; rel=duplicate; pri=2; geo=de"), "{head}");
    assert!(
        head.contains(&format!("link: <{ISO}.meta4>; rel=describedby")),
        "{head}"
    );
    let content = &w.files["pub/releases/1.0/image.iso"];
    let b64 = {
        let hex = sha256_hex(content);
        let bytes: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).expect("hex"))
            .collect();
        base64(&bytes)
    };
    assert!(
        head.contains(&format!("repr-digest: sha-256=:{}:", b64.to_lowercase())),
        "{head}"
    );
    assert!(
        head.contains(&format!("digest: sha-256={}", b64.to_lowercase())),
        "{head}"
    );
}

#[test]
fn the_mirror_list_in_html_and_json() {
    let w = World::start("");
    let json = Command::new("curl")
        .args(["-s", "--interface", FR_CLIENT])
        .arg(w.url("/pub/data/a%20b.bin?json"))
        .output()
        .expect("curl");
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(v["path"], "/pub/data/a b.bin");
    assert_eq!(v["size"], 30_000);
    assert_eq!(v["client_country"], "FR");
    assert_eq!(
        v["mirrors"][0]["name"], "fr",
        "the client's best first: {v}"
    );
    assert_eq!(v["mirrors"].as_array().map(Vec::len), Some(4));
    let html = Command::new("curl")
        .args(["-s", "--interface", FR_CLIENT])
        .arg(w.url("/pub/data/a%20b.bin?mirrorlist"))
        .output()
        .expect("curl");
    let html = String::from_utf8_lossy(&html.stdout);
    assert!(
        html.contains("<h1>Mirrors of /pub/data/a b.bin</h1>"),
        "{html}"
    );
    assert!(html.contains(&format!("{}/pub/data/a%20b.bin", w.mirrors[2].base())));
}

fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(T[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
