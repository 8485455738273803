//! Fixtures shared by the TLS test files: certificates in a setup's
//! directory, a TLS listener's config, curl and s_client over TLS.
#![allow(dead_code)]
// Shared by test binaries, which export nothing: `pub` is for the test files.
#![allow(unreachable_pub)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use super::certs;
use super::support::{Levee, LeveeSetup, Nginx, curl, poll};

/// A setup whose directory holds a CA `ca`, `a.pem` for `a.test` and
/// `b.pem` for `*.b.test`.
pub fn setup() -> LeveeSetup {
    let setup = LeveeSetup::new();
    let dir = setup.dir.path();
    certs::ca(dir, "ca");
    certs::leaf(dir, "ca", "a", "a.test", &["a.test"]);
    certs::leaf(dir, "ca", "b", "wild.b.test", &["*.b.test"]);
    setup
}

/// A TLS listener with both certificates (`a` the default), proxying to
/// `upstream`; `tls` goes into `[listener.tls]`, `extra` at the end.
pub fn config(setup: &LeveeSetup, upstream: &str, tls: &str, extra: &str) -> String {
    format!(
        r#"pid_file = "{pid}"

[[listener]]
address = "127.0.0.1:{port}"
[listener.tls]
{tls}
[[listener.tls.certs]]
cert = "a.pem"
key = "a.key"
names = ["a.test"]
[[listener.tls.certs]]
cert = "b.pem"
key = "b.key"
names = ["*.b.test"]

[[route]]
proxy = "app"

[upstream.app]
servers = ["{upstream}"]

{extra}
"#,
        pid = setup.pid_file().display(),
        port = setup.port,
    )
}

/// Starts an nginx upstream and levee with [`config`]; `prepare` runs on
/// the setup directory first (to make more certificates).
pub fn start(tls: &str, prepare: impl FnOnce(&Path)) -> (Nginx, Levee) {
    let nginx = Nginx::start_default();
    let setup = setup();
    prepare(setup.dir.path());
    let cfg = config(&setup, &nginx.addr(), tls, "");
    let levee = setup.start(&cfg);
    (nginx, levee)
}

/// `curl -v` over HTTPS to `name` (resolved to levee), trusting the test CA.
pub fn https(levee: &Levee, name: &str, path: &str, args: &[&str]) -> Output {
    let ca = levee.dir().join("ca.pem").display().to_string();
    let resolve = format!("{name}:{}:127.0.0.1", levee.port);
    let url = format!("https://{name}:{}{path}", levee.port);
    let mut all = vec!["-v", "--http1.1", "--cacert", &ca, "--resolve", &resolve];
    all.extend_from_slice(args);
    all.push(&url);
    curl(&all)
}

/// The subject line curl prints for the server's certificate.
pub fn subject(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .find(|l| l.contains("subject:"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

pub fn ok_body(out: &Output) -> String {
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `openssl s_client` against levee, keeping stdin open a moment so
/// TLS 1.3 session tickets arrive before it quits.
pub fn s_client(levee: &Levee, args: &[&str]) -> String {
    let connect = format!("127.0.0.1:{}", levee.port);
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &connect, "-servername", "a.test"])
        .args(args)
        .current_dir(levee.dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl s_client");
    std::thread::sleep(Duration::from_millis(500));
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("s_client output");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Replaces `a.pem`/`a.key` with a new certificate whose CN is `cn`.
pub fn renew_a(dir: &Path, cn: &str) {
    let tmp = format!("new-{cn}");
    certs::leaf(dir, "ca", &tmp, cn, &["a.test"]);
    std::fs::rename(dir.join(format!("{tmp}.key")), dir.join("a.key")).expect("key");
    std::fs::rename(dir.join(format!("{tmp}.pem")), dir.join("a.pem")).expect("cert");
}

pub fn wait_subject(levee: &Levee, cn: &str, within: Duration) -> bool {
    poll(within, || {
        subject(&https(levee, "a.test", "/", &[]))
            .contains(&format!("CN={cn}"))
            .then_some(())
    })
    .is_some()
}
