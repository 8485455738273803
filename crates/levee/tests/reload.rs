//! `levee reload` says whether the running levee took the new config
//! (issue 12, section 8): through the admin listener without a pid file,
//! with the server's own errors when it refuses; by signal only after the
//! config passed the checks here.

mod support;

use std::fs;
use std::path::Path;
use std::time::Duration;

use support::*;

const TOKEN: &str = "reload-token-0123456789abcdef";

/// A levee on `port` answering `body` on `/`; `admin` adds an `[admin]`
/// listener with the token file in `dir`, `pid_file` a pid file.
fn config(
    port: u16,
    dir: &Path,
    pid_file: Option<&Path>,
    admin: Option<u16>,
    body: &str,
    extra: &str,
) -> String {
    let mut text = String::new();
    if let Some(pid) = pid_file {
        text.push_str(&format!("pid_file = \"{}\"\n", pid.display()));
    }
    text.push_str(&format!(
        "[log]\naccess = \"off\"\n\n[[listener]]\naddress = \"127.0.0.1:{port}\"\n\n[[route]]\nrespond = \"{body}\"\n\n"
    ));
    if let Some(admin) = admin {
        text.push_str(&format!(
            "[admin]\naddress = \"127.0.0.1:{admin}\"\ntoken_file = \"{}\"\n",
            dir.join("admin.token").display()
        ));
    }
    text.push_str(extra);
    text
}

fn body(levee: &Levee) -> String {
    curl_ok(&[&levee.url("/")]).trim().to_owned()
}

fn start(admin: Option<u16>, pid: bool) -> Levee {
    let setup = LeveeSetup::new();
    fs::write(setup.dir.join("admin.token"), format!("{TOKEN}\n")).expect("write token");
    let pid_file = setup.pid_file();
    let cfg = config(
        setup.port,
        setup.dir.path(),
        pid.then_some(pid_file.as_path()),
        admin,
        "old",
        "",
    );
    let mut levee = setup.start(&cfg);
    if let Some(admin) = admin {
        levee.wait_port(admin);
    }
    levee
}

/// Replaces `levee`'s config with [`config`]'s for `body` and `extra`.
fn rewrite(levee: &Levee, admin: Option<u16>, pid: bool, body: &str, extra: &str) {
    let pid_file = levee.pid_file();
    levee.write_config(&config(
        levee.port,
        levee.dir(),
        pid.then_some(pid_file.as_path()),
        admin,
        body,
        extra,
    ));
}

fn reload(levee: &Levee) -> (bool, String, String) {
    let config = levee.config_path().display().to_string();
    let out = levee_cmd(&["reload", "-c", &config]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn reload_goes_through_the_admin_listener_without_a_pid_file() {
    let admin = free_port();
    let levee = start(Some(admin), false);
    assert_eq!(body(&levee), "old");
    rewrite(&levee, Some(admin), false, "new", "");
    let (ok, out, err) = reload(&levee);
    assert!(ok, "{err}");
    let file = levee.config_path().display().to_string();
    assert_eq!(out.trim(), format!("levee: reloaded {file}"));
    // The answer comes after the swap: no polling needed.
    assert_eq!(body(&levee), "new");
    // By address, the token from a file; without it, refused.
    let addr = format!("127.0.0.1:{admin}");
    let token = levee.dir().join("admin.token").display().to_string();
    let out = levee_cmd(&["reload", "--admin", &addr, "--token-file", &token]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = levee_cmd(&["reload", "--admin", &addr]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
}

#[test]
fn a_refused_reload_exits_non_zero_with_the_servers_errors() {
    let admin = free_port();
    let mut levee = start(Some(admin), false);
    let file = levee.config_path().display().to_string();

    // Only the running levee can see this one: the file parses, but the
    // password file it names does not exist.
    rewrite(
        &levee,
        Some(admin),
        false,
        "new",
        "password_file = \"/nonexistent/admin.passwd\"\n",
    );
    let (ok, _, err) = reload(&levee);
    assert!(!ok, "a refused reload exited 0");
    assert!(
        err.contains(&format!(
            "{file}:13:17: admin.password_file: cannot read the password file /nonexistent/admin.passwd"
        )),
        "{err}"
    );
    assert!(
        err.contains("levee: reload refused; the running config stays"),
        "{err}"
    );
    assert_eq!(body(&levee), "old");

    // Nor [acme]'s files: refused before anything changes (the manager
    // not started: no storage directory), as `levee check` refuses them.
    let storage = levee.dir().join("acme");
    rewrite(
        &levee,
        Some(admin),
        false,
        "new",
        &format!(
            "\n[acme]\nnames = [\"a.test\"]\nca_root = \"/nonexistent/acme-root.pem\"\nstorage = \"{}\"\n",
            storage.display()
        ),
    );
    let (ok, _, err) = reload(&levee);
    assert!(!ok, "a reload with a missing [acme] file exited 0");
    assert!(
        err.contains("acme.ca_root: cannot read `/nonexistent/acme-root.pem`"),
        "{err}"
    );
    assert!(
        err.contains("levee: reload refused; the running config stays"),
        "{err}"
    );
    assert_eq!(body(&levee), "old");
    assert!(!storage.exists(), "a refused reload started the manager");

    // Nor this one: a new listener on a port another process holds.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    rewrite(
        &levee,
        Some(admin),
        false,
        "new",
        &format!("\n[[listener]]\naddress = \"127.0.0.1:{port}\"\n"),
    );
    let (ok, _, err) = reload(&levee);
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "listener[1].address: cannot listen on 127.0.0.1:{port}"
        )),
        "{err}"
    );
    assert_eq!(body(&levee), "old");

    // A file that does not parse is refused before asking.
    rewrite(
        &levee,
        Some(admin),
        false,
        "new",
        "[[route]]\nproxy = \"nowhere\"\n",
    );
    let (ok, _, err) = reload(&levee);
    assert!(!ok);
    assert!(err.contains(&format!("{file}:")), "{err}");
    assert!(err.contains("nowhere"), "{err}");
    assert_eq!(body(&levee), "old");
    assert!(levee.is_running());
    // The running levee logged its refusals too.
    assert!(levee.wait_stderr(
        "reload refused; the running config stays",
        Duration::from_secs(5)
    ));
}

#[test]
fn reload_by_signal_checks_the_config_before_signalling() {
    let levee = start(None, true);
    rewrite(
        &levee,
        None,
        true,
        "new",
        "[[route]]\nproxy = \"nowhere\"\n",
    );
    let (ok, _, err) = reload(&levee);
    assert!(!ok, "a broken config was signalled");
    let file = levee.config_path().display().to_string();
    assert!(err.contains(&format!("{file}:")), "{err}");
    assert!(err.contains("nowhere"), "{err}");
    // levee was never asked.
    assert!(
        !levee.stderr().contains("reload refused"),
        "{}",
        levee.stderr()
    );
    assert_eq!(body(&levee), "old");

    // A TLS certificate that does not load: `levee check` reads it, so the
    // signal is not sent either.
    rewrite(
        &levee,
        None,
        true,
        "new",
        &format!(
            "\n[[listener]]\naddress = \"127.0.0.1:{}\"\n[listener.tls]\n[[listener.tls.certs]]\ncert = \"/nonexistent/c.pem\"\nkey = \"/nonexistent/k.pem\"\n",
            free_port()
        ),
    );
    let (ok, _, err) = reload(&levee);
    assert!(!ok);
    assert!(err.contains("listener[1].tls.certs[0].cert"), "{err}");
    assert_eq!(body(&levee), "old");

    rewrite(&levee, None, true, "new", "");
    let (ok, _, err) = reload(&levee);
    assert!(ok, "{err}");
    let applied = poll(Duration::from_secs(10), || {
        (body(&levee) == "new").then_some(())
    });
    assert!(applied.is_some(), "the good config was not applied");
}

#[test]
fn without_admin_or_pid_file_reload_says_it_cannot_reach_levee() {
    let levee = start(None, false);
    let (ok, _, err) = reload(&levee);
    assert!(!ok);
    assert!(err.contains("sets neither [admin] nor pid_file"), "{err}");
}
