//! levee's own log as a service writes it: text or JSON lines, the
//! connection and request spans on lines logged for them, and log files
//! reopened at their paths on SIGUSR1 and `levee reload` (logrotate).

mod support;

use std::fs;
use std::path::Path;
use std::time::Duration;

use support::{LeveeSetup, curl, levee_cmd, poll};

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// Waits until the file at `path` contains `needle`.
fn wait_for(path: &Path, needle: &str) -> bool {
    poll(Duration::from_secs(10), || {
        read(path).contains(needle).then_some(())
    })
    .is_some()
}

/// logrotate's dance: move both files away, signal (SIGUSR1, then `levee
/// reload`), and the next lines go to new files at the old paths while the
/// moved ones keep what came before.
#[test]
fn log_files_are_reopened_on_usr1_and_on_reload() {
    let setup = LeveeSetup::new();
    let error_log = setup.dir.join("error.log");
    let access_log = setup.dir.join("access.log");
    let config = format!(
        "pid_file = \"{}\"\n[log]\naccess = \"{}\"\nerror = \"{}\"\n\
         [[listener]]\naddress = \"127.0.0.1:{}\"\n[[route]]\nrespond = \"x\"\n",
        setup.pid_file().display(),
        access_log.display(),
        error_log.display(),
        setup.port
    );
    let levee = setup.start(&config);
    assert!(curl(&[&levee.url("/first")]).status.success());
    assert!(wait_for(&access_log, "GET /first"), "{}", read(&access_log));
    assert!(
        read(&error_log).contains("listening"),
        "{}",
        read(&error_log)
    );
    assert!(
        levee.stderr().is_empty(),
        "the log went to stderr too: {}",
        levee.stderr()
    );

    let rotated = |n: u32| {
        let (e, a) = (
            levee.dir().join(format!("error.log.{n}")),
            levee.dir().join(format!("access.log.{n}")),
        );
        fs::rename(&error_log, &e).expect("rotate error.log");
        fs::rename(&access_log, &a).expect("rotate access.log");
        (e, a)
    };

    let (error_1, access_1) = rotated(1);
    support::signal_pid(levee.pid(), "-USR1");
    assert!(
        wait_for(&error_log, "log files reopened"),
        "no new error.log"
    );
    assert!(curl(&[&levee.url("/second")]).status.success());
    assert!(
        wait_for(&access_log, "GET /second"),
        "{}",
        read(&access_log)
    );
    assert!(!read(&access_1).contains("/second"));
    assert!(read(&access_1).contains("/first"));
    assert!(read(&error_1).contains("listening"));

    let (_, access_2) = rotated(2);
    let shown = levee.config_path().display().to_string();
    let out = levee_cmd(&["reload", "-c", &shown]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        wait_for(&error_log, "reloaded"),
        "no new error.log after reload"
    );
    assert!(curl(&[&levee.url("/third")]).status.success());
    assert!(wait_for(&access_log, "GET /third"), "{}", read(&access_log));
    assert!(read(&access_2).contains("/second"));
    assert!(!read(&access_2).contains("/third"));
}

/// A dead upstream's warning, as JSON and as text, with the connection's
/// and the request's spans turned on.
#[test]
fn lines_carry_the_connection_and_request_spans() {
    for format in ["json", "text"] {
        let setup = LeveeSetup::new();
        let error_log = setup.dir.join("error.log");
        let port = setup.port;
        let config = format!(
            "[log]\naccess = \"off\"\nerror = \"{}\"\nerror_format = \"{format}\"\n\
             level = \"info,levee::span=debug\"\n\
             [[listener]]\naddress = \"127.0.0.1:{port}\"\n[[route]]\nproxy = \"dead\"\n\
             [upstream.dead]\nservers = [\"127.0.0.1:9\"]\nretries = 0\n",
            error_log.display()
        );
        let levee = setup.start(&config);
        let out = curl(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &levee.url("/where?x=1"),
        ]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "502");
        assert!(
            wait_for(&error_log, "upstream failed"),
            "{}",
            read(&error_log)
        );
        let text = read(&error_log);
        let line = text
            .lines()
            .find(|l| l.contains("upstream failed"))
            .expect("the warning");
        if format == "json" {
            let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            assert_eq!(v["level"], "WARN", "{line}");
            assert_eq!(v["fields"]["message"], "upstream failed", "{line}");
            let spans = v["spans"].as_array().expect("spans");
            assert_eq!(spans[0]["name"], "conn", "{line}");
            assert_eq!(spans[0]["listener"], format!("127.0.0.1:{port}"), "{line}");
            assert!(
                spans[0]["peer"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("127.0.0.1:")),
                "{line}"
            );
            assert_eq!(spans[1]["name"], "request", "{line}");
            assert_eq!(spans[1]["method"], "GET", "{line}");
            assert_eq!(spans[1]["path"], "/where", "{line}");
            let id = spans[1]["request_id"]
                .as_str()
                .expect("the span's request id");
            assert_eq!(v["fields"]["request_id"], id, "{line}");
            // Every line is JSON, the start-up ones too.
            for l in text.lines() {
                serde_json::from_str::<serde_json::Value>(l)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            }
        } else {
            assert!(
                line.contains(&format!("conn{{listener=127.0.0.1:{port} peer=127.0.0.1:")),
                "{line}"
            );
            // The span names the request id, and the line names it again
            // itself (proxy.rs: spans are off by default).
            let id = line
                .split("request{method=GET path=/where request_id=")
                .nth(1)
                .and_then(|rest| rest.split('}').next())
                .unwrap_or_else(|| panic!("no request span with its id: {line}"));
            assert_eq!(id.len(), 32, "{line}");
            assert!(line.ends_with(&format!("request_id={id}")), "{line}");
        }
    }
}

/// By default the spans are off (their cost is per request), and lines
/// carry only their own fields.
#[test]
fn spans_are_off_by_default() {
    let setup = LeveeSetup::new();
    let port = setup.port;
    let config = format!(
        "[log]\naccess = \"off\"\nerror_format = \"json\"\n\
         [[listener]]\naddress = \"127.0.0.1:{port}\"\n[[route]]\nproxy = \"dead\"\n\
         [upstream.dead]\nservers = [\"127.0.0.1:9\"]\nretries = 0\n"
    );
    let levee = setup.start(&config);
    assert!(curl(&[&levee.url("/")]).status.success());
    assert!(levee.wait_stderr("upstream failed", Duration::from_secs(10)));
    let stderr = levee.stderr();
    let line = stderr
        .lines()
        .find(|l| l.contains("upstream failed"))
        .expect("the warning");
    let v: serde_json::Value = serde_json::from_str(line).expect("JSON");
    assert!(
        v.get("spans")
            .is_none_or(|s| s.as_array().is_some_and(Vec::is_empty)),
        "{line}"
    );
}

/// A log file levee cannot write is refused at its key, by `levee check`
/// and `levee run` alike, before anything starts.
#[test]
fn an_unwritable_log_file_is_an_error_at_its_key() {
    let setup = LeveeSetup::new();
    let config = format!(
        "[log]\nerror = \"/nonexistent-levee-dir/error.log\"\n\
         [[listener]]\naddress = \"127.0.0.1:{}\"\n[[route]]\nrespond = \"x\"\n",
        setup.port
    );
    fs::write(setup.config_path(), config).expect("write");
    let shown = setup.config_path().display().to_string();
    for command in ["check", "run"] {
        let out = levee_cmd(&[command, "-c", &shown]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "{shown}:2:9: log.error: directory `/nonexistent-levee-dir` does not exist"
            )),
            "{command}: {stderr}"
        );
    }
}
