//! The access log: combined and JSON formats, and where it goes.

mod support;

use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{Levee, LeveeSetup, Nginx, curl_ok, poll};

/// Checks `s` is a decimal number of seconds (such as `0.001`).
fn assert_seconds(s: &str, what: &str) {
    let v: f64 = s
        .parse()
        .unwrap_or_else(|_| panic!("{what} is not a number of seconds: {s:?}"));
    assert!((0.0..60.0).contains(&v), "{what} out of range: {v}");
}

/// The value after `key=` in a combined-format line.
fn kv<'a>(line: &'a str, key: &str) -> &'a str {
    let needle = format!(" {key}=");
    let at = line
        .find(&needle)
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"));
    line[at + needle.len()..]
        .split_whitespace()
        .next()
        .unwrap_or("")
}

#[test]
fn combined_format_for_a_proxied_request() {
    let nginx = Nginx::start_default();
    let levee = Levee::proxy(&nginx, "");
    let body = curl_ok(&[
        "-e",
        "http://ref.test/from",
        "-A",
        "test-agent/1.0",
        &levee.url("/logged?x=1"),
    ]);
    let line = levee.wait_stdout_line(&["/logged?x=1"]);
    assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
    let close = line.find("] \"").expect("time field closes with ]");
    let time = &line["127.0.0.1 - - [".len()..close];
    // e.g. 10/Oct/2000:13:55:36 +0000
    assert!(
        time.len() >= 26 && time.as_bytes()[2] == b'/' && time.contains(':'),
        "time {time:?}"
    );
    let rest = &line[close + 2..];
    let want = format!(
        "\"GET /logged?x=1 HTTP/1.1\" 200 {} \"http://ref.test/from\" \"test-agent/1.0\"",
        body.len()
    );
    assert!(
        rest.starts_with(&want),
        "got {rest:?}\nwant prefix {want:?}"
    );
    assert_seconds(kv(&line, "rt"), "rt");
    assert_seconds(kv(&line, "urt"), "urt");
}

#[test]
fn upstream_time_is_dash_without_upstream() {
    let setup = LeveeSetup::new();
    let config = format!(
        "pid_file = \"{}\"\n[[listener]]\naddress = \"127.0.0.1:{}\"\n[[route]]\nrespond = \"ok\"\n",
        setup.pid_file().display(),
        setup.port
    );
    let levee = setup.start(&config);
    curl_ok(&[&levee.url("/direct")]);
    let line = levee.wait_stdout_line(&["/direct"]);
    assert!(line.contains("\"GET /direct HTTP/1.1\" 200 "), "{line}");
    assert_eq!(kv(&line, "urt"), "-", "{line}");
    assert!(
        line.contains("\"-\" \"curl/"),
        "referer and user agent: {line}"
    );
}

/// Parses JSON lines with python3 and prints `key=value` for the keys we need.
fn json_fields(line: &str) -> String {
    let script = r#"
import json, sys
o = json.loads(sys.stdin.read())
assert isinstance(o, dict)
for k in ["remote", "method", "uri", "status", "bytes", "request_time", "upstream_time"]:
    v = o[k]
    print(k + "=" + type(v).__name__ + ":" + str(v))
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 not installed: run scripts/test");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(line.as_bytes())
        .expect("write to python3");
    let out = child.wait_with_output().expect("python3");
    assert!(
        out.status.success(),
        "not a JSON object with the required keys: {line}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn json_format_has_one_object_per_line() {
    let nginx = Nginx::start_default();
    let levee = Levee::proxy(&nginx, "[log]\nformat = \"json\"\n");
    let body = curl_ok(&[&levee.url("/j1")]);
    curl_ok(&[&levee.url("/j2?a=b")]);
    let line = levee.wait_stdout_line(&["/j1"]);
    let fields = json_fields(&line);
    assert!(fields.contains("remote=str:127.0.0.1\n"), "{fields}");
    assert!(fields.contains("method=str:GET\n"), "{fields}");
    assert!(fields.contains("uri=str:/j1\n"), "{fields}");
    assert!(fields.contains("status=int:200\n"), "{fields}");
    assert!(
        fields.contains(&format!("bytes=int:{}\n", body.len())),
        "{fields}"
    );
    assert!(
        fields.contains("request_time=float:") || fields.contains("request_time=int:"),
        "{fields}"
    );
    let line2 = levee.wait_stdout_line(&["/j2?a=b"]);
    assert!(json_fields(&line2).contains("uri=str:/j2?a=b\n"));
    // Every access-log line on stdout is a JSON object.
    for l in levee.stdout().lines().filter(|l| l.contains("/j")) {
        json_fields(l);
    }
}

#[test]
fn access_log_to_a_file() {
    let nginx = Nginx::start_default();
    let setup = LeveeSetup::new();
    let path = setup.dir.join("access.log");
    let config = setup.proxy_config(
        &[&nginx.addr()],
        &format!("[log]\naccess = \"{}\"\n", path.display()),
    );
    let levee = setup.start(&config);
    curl_ok(&[&levee.url("/to-file")]);
    let found = poll(Duration::from_secs(5), || {
        fs::read_to_string(&path)
            .ok()
            .filter(|s| s.contains("\"GET /to-file HTTP/1.1\" 200 "))
    });
    assert!(found.is_some(), "no line in {}", path.display());
    assert!(
        !levee.stdout().contains("/to-file"),
        "also logged to stdout"
    );
}

#[test]
fn access_log_off() {
    let nginx = Nginx::start_default();
    let levee = Levee::proxy(&nginx, "[log]\naccess = \"off\"\n");
    curl_ok(&[&levee.url("/quiet")]);
    nginx.wait_entries("/quiet", 1);
    // Give a line the same chance to appear as the other tests wait for one.
    let seen = poll(Duration::from_secs(1), || {
        (levee.stdout().contains("/quiet") || levee.stderr().contains("/quiet")).then_some(())
    });
    assert!(seen.is_none(), "access log written although off");
}

#[test]
fn access_log_to_stderr() {
    let nginx = Nginx::start_default();
    let levee = Levee::proxy(&nginx, "[log]\naccess = \"stderr\"\n");
    curl_ok(&[&levee.url("/err-stream")]);
    assert!(
        levee.wait_stderr("\"GET /err-stream HTTP/1.1\" 200 ", Duration::from_secs(5)),
        "stderr:\n{}",
        levee.stderr()
    );
    assert!(!levee.stdout().contains("/err-stream"));
}
