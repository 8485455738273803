//! WebSocket through levee: a real echo server (Python `websockets`) and a
//! real client, the tunnel's idle timeout, and a tunnel surviving reload.

mod support;

#[path = "tls/certs.rs"]
mod certs;

use std::io::{BufRead, BufReader};
use std::process::Command;
use std::time::Duration;

use support::{LeveeSetup, curl};

fn start_levee(echo: &support::WsEcho, extra: &str) -> support::Levee {
    let setup = LeveeSetup::new();
    let cfg = setup.proxy_config(&[&format!("127.0.0.1:{}", echo.port)], extra);
    setup.start(&cfg)
}

#[test]
fn websocket_messages_pass_both_ways() {
    let echo = support::ws_echo();
    let levee = start_levee(&echo, "");
    let url = format!("ws://127.0.0.1:{}/chat", levee.port);
    let out = support::ws_client(levee.dir(), &url, &["one", "two"])
        .wait_with_output()
        .expect("client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, "echo one\necho two\n");
    let line = levee.wait_stdout_line(&["/chat"]);
    assert!(line.contains("\" 101 "), "{line}");
    // A request without the upgrade fields reaches the server as plain HTTP,
    // which a WebSocket server refuses.
    let plain = curl(&["-o", "/dev/null", "-w", "%{http_code}", &levee.url("/chat")]);
    assert_eq!(String::from_utf8_lossy(&plain.stdout), "426");
}

#[test]
fn an_open_websocket_survives_reload() {
    let echo = support::ws_echo();
    let levee = start_levee(&echo, "");
    let url = format!("ws://127.0.0.1:{}/live", levee.port);
    let mut child = support::ws_client(levee.dir(), &url, &["before", "sleep:1.5", "after"]);
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    assert_eq!(
        lines.next().and_then(Result::ok).as_deref(),
        Some("echo before")
    );
    levee.reload();
    assert_eq!(
        lines.next().and_then(Result::ok).as_deref(),
        Some("echo after")
    );
    assert!(child.wait().expect("client").success());
    // The reload runs beside the tunnel, which does not wait for it.
    assert!(
        levee.wait_stderr("reloaded", Duration::from_secs(10)),
        "{}",
        levee.stderr()
    );
}

#[test]
fn an_idle_tunnel_is_closed_after_tunnel_idle() {
    let echo = support::ws_echo();
    let levee = start_levee(&echo, "[timeouts]\ntunnel_idle = \"500ms\"\n");
    let url = format!("ws://127.0.0.1:{}/idle", levee.port);
    let out = support::ws_client(levee.dir(), &url, &["first", "sleep:2", "second"])
        .wait_with_output()
        .expect("client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout, "echo first\n");
    assert!(!out.status.success(), "the tunnel should have been closed");
}

#[test]
fn websocket_over_a_tls_listener() {
    let echo = support::ws_echo();
    let setup = LeveeSetup::new();
    let dir = setup.dir.path().to_owned();
    certs::ca(&dir, "ca");
    certs::leaf(&dir, "ca", "a", "a.test", &["a.test"]);
    let cfg = setup
        .proxy_config(&[&format!("127.0.0.1:{}", echo.port)], "")
        .replacen(
            "\n\n[[route]]",
            "\n[listener.tls]\n[[listener.tls.certs]]\ncert = \"a.pem\"\nkey = \"a.key\"\n\n[[route]]",
            1,
        );
    let levee = setup.start(&cfg);
    let url = format!("wss://127.0.0.1:{}/secure", levee.port);
    let script = levee.dir().join("client.py");
    std::fs::write(&script, support::WS_CLIENT).expect("write client.py");
    let out = Command::new(support::ws_python())
        .arg(&script)
        .arg(&url)
        .arg("sealed")
        .env("WS_CA", levee.dir().join("ca.pem"))
        .env("WS_NAME", "a.test")
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout,
        "echo sealed\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
