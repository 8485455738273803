//! Certificates reloaded on `levee reload` and when their files change,
//! TLS turned on by a reload, and `levee check` naming a bad file.

mod support;

#[path = "tls/certs.rs"]
mod certs;
#[path = "tls/common.rs"]
mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use support::{Nginx, poll};

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
