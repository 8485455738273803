//! The command line: `check`, `proxy`, `reload`, `stop`, and the bare
//! `levee` that serves the current directory.

mod support;

use std::fs;
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use support::{LeveeSetup, Nginx, TempDir, curl_ok, levee_cmd, poll};

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// The examples name paths and addresses of an imagined machine, so they
/// are checked as files (`--file-only`); tests/check.rs holds `check`
/// against this machine.
#[test]
fn check_accepts_every_example() {
    let mut files: Vec<PathBuf> = fs::read_dir(examples_dir())
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    assert!(!files.is_empty(), "no examples/*.toml to check");
    for file in files {
        let shown = file.display().to_string();
        let out = levee_cmd(&["check", "--file-only", "-c", &shown]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{shown} failed the check:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains(&format!("configuration file {shown} is ok")),
            "check of {shown} printed {stdout:?}"
        );
    }
}

#[test]
fn check_reports_every_error_with_its_line() {
    let tmp = TempDir::new("check");
    let file = tmp.join("broken.toml");
    // Line numbers matter below.
    let config = r#"pid_file = "/tmp/levee-check.pid"

[limits]
max_bodyy = "1m"

[[listener]]
address = "127.0.0.1:18080"

[[listener]]
address = "127.0.0.1:18080"

[[route]]
proxy = "nope"

[upstream.app]
servers = ["127.0.0.1:9"]
"#;
    fs::write(&file, config).expect("write config");
    let shown = file.display().to_string();
    let out = levee_cmd(&["check", "-c", &shown]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "stderr:\n{stderr}");

    // (what, acceptable lines, a word the message must contain)
    let expected = [
        ("unknown key", &[4][..], "max_bodyy"),
        ("duplicate listener address", &[9, 10][..], "listener"),
        ("missing upstream", &[12, 13][..], "nope"),
    ];
    for (what, lines, word) in expected {
        let found = stderr.lines().any(|l| {
            lines
                .iter()
                .any(|n| l.starts_with(&format!("{shown}:{n}:")))
                && l.contains(word)
        });
        assert!(
            found,
            "{what} not reported as {shown}:{lines:?}:COL: ... {word} ...; stderr:\n{stderr}"
        );
    }
    // Every error line has the FILE:LINE:COL: key.path: message shape.
    for l in stderr.lines().filter(|l| l.starts_with(&shown)) {
        let rest = &l[shown.len()..];
        let parts: Vec<&str> = rest.splitn(4, ':').collect();
        assert!(
            parts.len() == 4 && parts[1].parse::<u32>().is_ok() && parts[2].parse::<u32>().is_ok(),
            "malformed error line {l:?}"
        );
    }
}

#[test]
fn check_of_good_config_passes_and_missing_file_fails() {
    let setup = LeveeSetup::new();
    let config = format!(
        "[[listener]]\naddress = \"127.0.0.1:{}\"\n[[route]]\nrespond = \"hi\"\n",
        setup.port
    );
    fs::write(setup.config_path(), config).expect("write");
    let shown = setup.config_path().display().to_string();
    let out = levee_cmd(&["check", "-c", &shown]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("configuration file {shown} is ok"))
    );

    let missing = setup.dir.join("missing.toml").display().to_string();
    let out = levee_cmd(&["check", "-c", &missing]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&missing));
}

#[test]
fn proxy_subcommand_balances_over_servers() {
    let a = Nginx::start_default();
    let b = Nginx::start_default();
    let setup = LeveeSetup::new();
    let listen = format!("127.0.0.1:{}", setup.port);
    let to = format!("{},{}", a.addr(), b.addr());
    let port = setup.port;
    let levee = setup.start_args(&["proxy", "--listen", &listen, "--to", &to], port);
    let mut seen = [false, false];
    for _ in 0..10 {
        let body = curl_ok(&[&levee.url("/")]);
        seen[0] |= body == format!("hello from {}\n", a.port());
        seen[1] |= body == format!("hello from {}\n", b.port());
    }
    assert_eq!(seen, [true, true], "not every server was used");
}

#[test]
fn no_arguments_serves_current_directory_on_8080() {
    // The one test that needs a fixed port: it is levee's documented default.
    if TcpListener::bind("127.0.0.1:8080").is_err() {
        eprintln!("skipping: 127.0.0.1:8080 is in use");
        return;
    }
    let setup = LeveeSetup::new();
    fs::write(setup.dir.join("index.html"), "<p>cwd</p>\n").expect("write");
    fs::write(setup.dir.join("note.txt"), "a note\n").expect("write");
    let levee = setup.start_args(&[], 8080);
    assert_eq!(curl_ok(&["http://127.0.0.1:8080/"]), "<p>cwd</p>\n");
    assert_eq!(curl_ok(&["http://127.0.0.1:8080/note.txt"]), "a note\n");
    let said = poll(Duration::from_secs(5), || {
        let all = levee.stdout() + &levee.stderr();
        all.contains("127.0.0.1:8080").then_some(())
    });
    assert!(said.is_some(), "levee did not print where it listens");
}

fn respond_config(setup_pid: &str, port: u16, body: &str) -> String {
    format!(
        "pid_file = \"{setup_pid}\"\n[[listener]]\naddress = \"127.0.0.1:{port}\"\n\
         [[route]]\nrespond = \"{body}\"\n"
    )
}

#[test]
fn reload_and_stop_subcommands_use_the_pid_file() {
    let setup = LeveeSetup::new();
    let pid = setup.pid_file().display().to_string();
    let port = setup.port;
    let mut levee = setup.start(&respond_config(&pid, port, "before"));
    let written = poll(Duration::from_secs(5), || fs::read_to_string(&pid).ok());
    assert_eq!(
        written.as_deref().map(str::trim),
        Some(levee.pid().to_string().as_str()),
        "pid file"
    );
    assert_eq!(curl_ok(&[&levee.url("/")]).trim(), "before");

    levee.write_config(&respond_config(&pid, port, "after"));
    let config = levee.config_path().display().to_string();
    let out = levee_cmd(&["reload", "-c", &config]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reloaded = poll(Duration::from_secs(5), || {
        (curl_ok(&[&levee.url("/")]).trim() == "after").then_some(())
    });
    assert!(
        reloaded.is_some(),
        "levee reload did not apply the new config"
    );

    let out = levee_cmd(&["stop", "-c", &config]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = levee.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "levee exited with {status}");
}
