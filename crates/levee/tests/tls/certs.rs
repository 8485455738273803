//! Test certificates made with the `openssl` CLI at test time: a CA and
//! leaves it signs (ECDSA P-256). Nothing here is committed key material.
#![allow(dead_code)]
// Shared by test binaries, which export nothing: `pub` is for the test files.
#![allow(unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `openssl req` with a new unencrypted P-256 key written to `key`.
fn req(dir: &Path, key: &str, cn: &str, more: &[&str]) {
    let subject = format!("/CN={cn}");
    let mut args = vec![
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
    ];
    args.extend(["-nodes", "-keyout", key, "-subj", &subject]);
    args.extend_from_slice(more);
    openssl(dir, &args);
}

/// A test CA in `dir`: `{name}.pem` and `{name}.key`.
pub fn ca(dir: &Path, name: &str) -> PathBuf {
    let (pem, key) = (format!("{name}.pem"), format!("{name}.key"));
    req(dir, &key, name, &["-x509", "-days", "2", "-out", &pem]);
    dir.join(pem)
}

/// A leaf signed by the CA `ca` (as made by [`ca`]), with subject CN `cn`
/// and DNS names `names`: writes `{stem}.pem` and `{stem}.key`.
pub fn leaf(dir: &Path, ca: &str, stem: &str, cn: &str, names: &[&str]) -> (PathBuf, PathBuf) {
    let [pem, key, csr, ext] = ["pem", "key", "csr", "ext"].map(|e| format!("{stem}.{e}"));
    req(dir, &key, cn, &["-out", &csr]);
    let sans: Vec<String> = names.iter().map(|n| format!("DNS:{n}")).collect();
    let san = format!("subjectAltName={}\n", sans.join(","));
    std::fs::write(dir.join(&ext), san).expect("write extensions");
    let (ca_pem, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
    );
    (dir.join(pem), dir.join(key))
}

/// A signed "good" OCSP response for `{stem}.pem` from the CA `ca`, as
/// `openssl ocsp` answers it from an index file: writes `{stem}.ocsp`.
pub fn ocsp(dir: &Path, ca: &str, stem: &str) -> PathBuf {
    let out = Command::new("openssl")
        .args([
            "x509", "-noout", "-serial", "-subject", "-nameopt", "compat", "-in",
        ])
        .arg(format!("{stem}.pem"))
        .current_dir(dir)
        .output()
        .expect("openssl x509");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_default()
            .to_owned()
    };
    let (serial, subject) = (field("serial="), field("subject="));
    let index = format!("V\t301231235959Z\t\t{serial}\tunknown\t{subject}\n");
    std::fs::write(dir.join(format!("{stem}.index")), index).expect("write index");
    let (pem, req, resp, index) = (
        format!("{stem}.pem"),
        format!("{stem}.ocspreq"),
        format!("{stem}.ocsp"),
        format!("{stem}.index"),
    );
    let ca_pem = format!("{ca}.pem");
    openssl(
        dir,
        &["ocsp", "-issuer", &ca_pem, "-cert", &pem, "-reqout", &req],
    );
    openssl(
        dir,
        &[
            "ocsp",
            "-index",
            &index,
            "-rsigner",
            &ca_pem,
            "-rkey",
            &format!("{ca}.key"),
            "-CA",
            &ca_pem,
            "-reqin",
            &req,
            "-respout",
            &resp,
            "-ndays",
            "1",
        ],
    );
    dir.join(resp)
}
