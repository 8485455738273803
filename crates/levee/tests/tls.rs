//! TLS termination with real clients: curl for SNI, mTLS and reload,
//! `openssl s_client` for ALPN and resumption, `levee check` for bad files.

mod support;

#[path = "tls/certs.rs"]
mod certs;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::{Levee, LeveeSetup, Nginx, curl, poll};

/// A setup whose directory holds a CA `ca`, `a.pem` for `a.test` and
/// `b.pem` for `*.b.test`.
fn setup() -> LeveeSetup {
    let setup = LeveeSetup::new();
    let dir = setup.dir.path();
    certs::ca(dir, "ca");
    certs::leaf(dir, "ca", "a", "a.test", &["a.test"]);
    certs::leaf(dir, "ca", "b", "wild.b.test", &["*.b.test"]);
    setup
}

/// A TLS listener with both certificates (`a` the default), proxying to
/// `upstream`; `tls` goes into `[listener.tls]`, `extra` at the end.
fn config(setup: &LeveeSetup, upstream: &str, tls: &str, extra: &str) -> String {
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
fn start(tls: &str, prepare: impl FnOnce(&Path)) -> (Nginx, Levee) {
    let nginx = Nginx::start_default();
    let setup = setup();
    prepare(setup.dir.path());
    let cfg = config(&setup, &nginx.addr(), tls, "");
    let levee = setup.start(&cfg);
    (nginx, levee)
}

/// `curl -v` over HTTPS to `name` (resolved to levee), trusting the test CA.
fn https(levee: &Levee, name: &str, path: &str, args: &[&str]) -> Output {
    let ca = levee.dir().join("ca.pem").display().to_string();
    let resolve = format!("{name}:{}:127.0.0.1", levee.port);
    let url = format!("https://{name}:{}{path}", levee.port);
    let mut all = vec!["-v", "--http1.1", "--cacert", &ca, "--resolve", &resolve];
    all.extend_from_slice(args);
    all.push(&url);
    curl(&all)
}

/// The subject line curl prints for the server's certificate.
fn subject(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .find(|l| l.contains("subject:"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn ok_body(out: &Output) -> String {
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn sni_selects_the_certificate_per_name_and_upstream_sees_https() {
    let (nginx, levee) = start("hsts = \"2h\"", |_| {});

    let a = https(&levee, "a.test", "/one", &[]);
    assert!(ok_body(&a).starts_with("hello from"), "{a:?}");
    // HSTS on a proxied response.
    let verbose = String::from_utf8_lossy(&a.stderr);
    assert!(
        verbose.contains("< Strict-Transport-Security: max-age=7200"),
        "{verbose}"
    );
    assert!(subject(&a).contains("CN=a.test"), "{}", subject(&a));

    let b = https(&levee, "x.b.test", "/two", &[]);
    ok_body(&b);
    assert!(subject(&b).contains("CN=wild.b.test"), "{}", subject(&b));

    // An unknown name gets the default certificate, which curl refuses.
    let other = https(&levee, "c.test", "/", &[]);
    assert!(!other.status.success());
    assert!(subject(&other).contains("CN=a.test"), "{}", subject(&other));

    let entries = nginx.wait_entries("/two", 1);
    assert_eq!(entries[0].get("xfp"), "https");
}

/// Runs `openssl s_client` against levee, keeping stdin open a moment so
/// TLS 1.3 session tickets arrive before it quits.
fn s_client(levee: &Levee, args: &[&str]) -> String {
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

#[test]
fn alpn_and_session_resumption_with_s_client() {
    let (_nginx, levee) = start("", |_| {});

    let first = s_client(&levee, &["-alpn", "h2,http/1.1", "-sess_out", "s13"]);
    assert!(first.contains("ALPN protocol: http/1.1"), "{first}");
    assert!(first.contains("New, TLSv1.3"), "{first}");
    let again = s_client(&levee, &["-sess_in", "s13"]);
    assert!(again.contains("Reused, TLSv1.3"), "{again}");

    let first = s_client(&levee, &["-tls1_2", "-sess_out", "s12"]);
    assert!(first.contains("New, TLSv1.2"), "{first}");
    let again = s_client(&levee, &["-tls1_2", "-sess_in", "s12"]);
    assert!(again.contains("Reused, TLSv1.2"), "{again}");

    // TLS 1.1 and below are refused.
    let old = s_client(&levee, &["-tls1_1"]);
    assert!(!old.contains("New, TLSv1.1"), "{old}");
}

#[test]
fn client_certificates_are_required_when_client_ca_is_set() {
    let (nginx, levee) = start("client_ca = \"clients.pem\"", |dir| {
        certs::ca(dir, "clients");
        certs::leaf(dir, "clients", "alice", "alice", &["alice.client"]);
        certs::ca(dir, "stranger-ca");
        certs::leaf(
            dir,
            "stranger-ca",
            "mallory",
            "mallory",
            &["mallory.client"],
        );
    });
    let dir = levee.dir().to_owned();

    let path = |f: &str| dir.join(f).display().to_string();
    let (alice_pem, alice_key) = (path("alice.pem"), path("alice.key"));
    let with = https(
        &levee,
        "a.test",
        "/mtls",
        &["--cert", &alice_pem, "--key", &alice_key],
    );
    assert!(ok_body(&with).starts_with("hello from"));

    let without = https(&levee, "a.test", "/mtls", &[]);
    assert!(
        !without.status.success(),
        "served without a client certificate"
    );

    let (m_pem, m_key) = (path("mallory.pem"), path("mallory.key"));
    let stranger = https(
        &levee,
        "a.test",
        "/mtls",
        &["--cert", &m_pem, "--key", &m_key],
    );
    assert!(
        !stranger.status.success(),
        "served a certificate of another CA"
    );
    assert_eq!(nginx.wait_entries("/mtls", 1).len(), 1);
}

/// Replaces `a.pem`/`a.key` with a new certificate whose CN is `cn`.
fn renew_a(dir: &Path, cn: &str) {
    let tmp = format!("new-{cn}");
    certs::leaf(dir, "ca", &tmp, cn, &["a.test"]);
    std::fs::rename(dir.join(format!("{tmp}.key")), dir.join("a.key")).expect("key");
    std::fs::rename(dir.join(format!("{tmp}.pem")), dir.join("a.pem")).expect("cert");
}

fn wait_subject(levee: &Levee, cn: &str, within: Duration) -> bool {
    poll(within, || {
        subject(&https(levee, "a.test", "/", &[]))
            .contains(&format!("CN={cn}"))
            .then_some(())
    })
    .is_some()
}

#[test]
fn reload_serves_the_new_certificate_and_keeps_the_old_on_a_bad_file() {
    let (_nginx, levee) = start("", |_| {});
    let dir = levee.dir().to_owned();
    assert!(wait_subject(&levee, "a.test", Duration::from_secs(1)));

    renew_a(&dir, "a-renewed.test");
    levee.reload();
    assert!(
        wait_subject(&levee, "a-renewed.test", Duration::from_secs(5)),
        "{}",
        levee.stderr()
    );

    // A broken certificate: logged, and the renewed one stays in use.
    std::fs::write(dir.join("a.pem"), "-----BEGIN CERTIFICATE-----\nbroken\n").expect("write");
    levee.reload();
    let logged = poll(Duration::from_secs(5), || {
        levee
            .stderr()
            .contains("old certificates stay in use")
            .then_some(())
    });
    assert!(logged.is_some(), "{}", levee.stderr());
    assert!(levee.stderr().contains("a.pem"), "{}", levee.stderr());
    let out = https(&levee, "a.test", "/", &[]);
    ok_body(&out);
    assert!(
        subject(&out).contains("CN=a-renewed.test"),
        "{}",
        subject(&out)
    );
}

#[test]
fn changed_certificate_files_are_picked_up_without_reload() {
    let (_nginx, levee) = start("", |_| {});
    let dir = levee.dir().to_owned();
    assert!(wait_subject(&levee, "a.test", Duration::from_secs(1)));
    renew_a(&dir, "a-watched.test");
    assert!(
        wait_subject(&levee, "a-watched.test", Duration::from_secs(10)),
        "{}",
        levee.stderr()
    );
}

#[test]
fn levee_check_names_the_key_and_the_bad_file() {
    let setup = setup();
    std::fs::write(setup.dir.join("junk.pem"), "not pem\n").expect("write");
    let cfg =
        config(&setup, "127.0.0.1:9", "", "").replace("cert = \"b.pem\"", "cert = \"junk.pem\"");
    std::fs::write(setup.config_path(), &cfg).expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_levee"))
        .args(["check", "-c"])
        .arg(setup.config_path())
        .current_dir(setup.dir.path())
        .output()
        .expect("levee check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    // `cert = "junk.pem"` is on line 12, its value at column 8.
    assert!(
        stderr.contains(
            "levee.toml:12:8: listener[0].tls.certs[1].cert: `junk.pem`: no certificate in it"
        ),
        "{stderr}"
    );
}

#[test]
fn static_files_over_tls_and_a_redirect_from_plain_http() {
    let setup = setup();
    let dir = setup.dir.path().to_owned();
    std::fs::create_dir_all(dir.join("www")).expect("www");
    let big = support::random_bytes(300_000, 7);
    std::fs::write(dir.join("www/big.bin"), &big).expect("big");
    let plain = support::free_port();
    let cfg = format!(
        r#"[[listener]]
name = "tls"
address = "127.0.0.1:{port}"
[listener.tls]
hsts = "1h"
[[listener.tls.certs]]
cert = "a.pem"
key = "a.key"

[[listener]]
name = "plain"
address = "127.0.0.1:{plain}"

[[route]]
listener = "tls"
static = "www"

[[route]]
listener = "plain"
redirect = "https://{{host}}{{uri}}"
status = 308
"#,
        port = setup.port
    );
    let levee = setup.start(&cfg);
    let got = https(&levee, "a.test", "/big.bin", &[]);
    let verbose = String::from_utf8_lossy(&got.stderr);
    assert!(
        verbose.contains("< Strict-Transport-Security: max-age=3600"),
        "{verbose}"
    );
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert!(got.stdout == big, "static file differs over TLS");
    // A range, through the same read-and-write path.
    let part = https(&levee, "a.test", "/big.bin", &["-r", "1000-1999"]);
    assert_eq!(part.stdout, big[1000..2000]);

    let out = curl(&["-si", &format!("http://127.0.0.1:{plain}/x?y=1")]);
    let head = String::from_utf8_lossy(&out.stdout);
    assert!(head.starts_with("HTTP/1.1 308"), "{head}");
    // Never over plain HTTP (RFC 6797 §7.2).
    assert!(!head.contains("Strict-Transport-Security"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("location: https://127.0.0.1:{plain}/x?y=1")),
        "{head}"
    );
}

#[test]
fn a_silent_client_is_dropped_at_the_handshake_timeout() {
    let (_nginx, levee) = start("handshake_timeout = \"500ms\"", |_| {});
    let mut conn = support::RawConn::connect(levee.port);
    assert!(conn.closed_within(Duration::from_secs(3)), "still open");
}

#[test]
fn proxy_protocol_header_before_the_tls_handshake() {
    let nginx = Nginx::start_default();
    let setup = setup();
    let cfg = config(&setup, &nginx.addr(), "", "").replacen(
        "[listener.tls]",
        "proxy_protocol = \"127.0.0.1\"\n[listener.tls]",
        1,
    );
    let levee = setup.start(&cfg);
    let out = https(&levee, "a.test", "/pp-tls", &["--haproxy-protocol"]);
    assert!(ok_body(&out).starts_with("hello from"));
    let e = nginx.wait_entries("/pp-tls", 1);
    assert_eq!(
        (e[0].get("xff").as_str(), e[0].get("xfp").as_str()),
        ("127.0.0.1", "https")
    );
    // The same client without the header is dropped before the handshake.
    assert!(!https(&levee, "a.test", "/no-pp", &[]).status.success());
}

#[test]
fn ocsp_response_is_stapled_when_a_file_is_given() {
    let nginx = Nginx::start_default();
    let setup = setup();
    certs::ocsp(setup.dir.path(), "ca", "a");
    let cfg = config(&setup, &nginx.addr(), "", "").replacen(
        "names = [\"a.test\"]",
        "names = [\"a.test\"]\nocsp = \"a.ocsp\"",
        1,
    );
    let levee = setup.start(&cfg);
    let stapled = s_client(&levee, &["-status"]);
    assert!(
        stapled.contains("OCSP Response Status: successful"),
        "{stapled}"
    );
    assert!(stapled.contains("Cert Status: good"), "{stapled}");
    // The other certificate has no response to staple.
    let none = s_client(&levee, &["-status", "-servername", "x.b.test"]);
    assert!(none.contains("OCSP response: no response sent"), "{none}");
}

/// Sends a GET on an open `s_client -quiet` session and waits for the
/// answer's body line on `lines`.
fn get_over(
    stdin: &mut std::process::ChildStdin,
    lines: &std::sync::mpsc::Receiver<String>,
    path: &str,
) -> Option<String> {
    use std::io::Write;
    let req = format!("GET {path} HTTP/1.1\r\nHost: a.test\r\n\r\n");
    stdin.write_all(req.as_bytes()).ok()?;
    stdin.flush().ok()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        let line = lines.recv_timeout(left).ok()?;
        if line.starts_with("hello from") {
            return Some(line);
        }
    }
    None
}

#[test]
fn an_open_connection_survives_a_certificate_reload() {
    let (_nginx, levee) = start("", |_| {});
    let connect = format!("127.0.0.1:{}", levee.port);
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-quiet",
            "-connect",
            &connect,
            "-servername",
            "a.test",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_client");
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    assert!(get_over(&mut stdin, &lines, "/before").is_some());

    renew_a(levee.dir(), "a-reloaded.test");
    levee.reload();
    assert!(wait_subject(
        &levee,
        "a-reloaded.test",
        Duration::from_secs(5)
    ));
    // The same TLS session still carries requests.
    assert!(get_over(&mut stdin, &lines, "/after").is_some());
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn reload_turns_tls_on_for_an_open_listener() {
    let nginx = Nginx::start_default();
    let setup = setup();
    let tls_config = config(&setup, &nginx.addr(), "", "");
    let plain = tls_config
        .split("[listener.tls]")
        .next()
        .expect("head")
        .to_owned()
        + &format!(
            "\n[[route]]\nproxy = \"app\"\n\n[upstream.app]\nservers = [\"{}\"]\n",
            nginx.addr()
        );
    let levee = setup.start(&plain);
    assert!(!https(&levee, "a.test", "/", &[]).status.success());
    levee.write_config(&tls_config);
    levee.reload();
    let on = poll(Duration::from_secs(5), || {
        https(&levee, "a.test", "/", &[])
            .status
            .success()
            .then_some(())
    });
    assert!(on.is_some(), "{}", levee.stderr());
}
