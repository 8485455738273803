//! WebSocket through levee: a real echo server (Python `websockets`) and a
//! real client, the tunnel's idle timeout, and a tunnel surviving reload.

mod support;

#[path = "tls/certs.rs"]
mod certs;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::{LeveeSetup, TempDir, curl, free_port, poll};

const ECHO: &str = r#"
import asyncio, sys, websockets
async def echo(ws, path=None):
    async for message in ws:
        await ws.send("echo " + message)
async def main():
    async with websockets.serve(echo, "127.0.0.1", int(sys.argv[1])):
        await asyncio.Future()
asyncio.run(main())
"#;

/// Sends each argument after the first (the URL) in turn, printing each
/// reply; a `sleep:N` argument waits N seconds instead. Exits 0 when done.
const CLIENT: &str = r#"
import asyncio, os, ssl, sys, websockets
async def main():
    tls = {}
    if os.environ.get("WS_CA"):
        ctx = ssl.create_default_context(cafile=os.environ["WS_CA"])
        tls = {"ssl": ctx, "server_hostname": os.environ["WS_NAME"]}
    async with websockets.connect(sys.argv[1], **tls) as ws:
        for arg in sys.argv[2:]:
            if arg.startswith("sleep:"):
                await asyncio.sleep(float(arg[6:]))
                continue
            await ws.send(arg)
            print(await ws.recv(), flush=True)
asyncio.run(main())
"#;

/// A Python that has `websockets`.
fn python() -> &'static str {
    static FOUND: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    FOUND.get_or_init(|| support::python_with("websockets"))
}

struct Echo {
    child: Child,
    port: u16,
    _dir: TempDir,
}

impl Drop for Echo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn echo_server() -> Echo {
    let dir = TempDir::new("ws");
    let script = dir.join("echo.py");
    std::fs::write(&script, ECHO).expect("write echo.py");
    let port = free_port();
    let child = Command::new(python())
        .arg(&script)
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    let up = poll(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    assert!(up.is_some(), "echo server did not start");
    Echo {
        child,
        port,
        _dir: dir,
    }
}

fn client(dir: &std::path::Path, url: &str, args: &[&str]) -> Child {
    let script = dir.join("client.py");
    std::fs::write(&script, CLIENT).expect("write client.py");
    Command::new(python())
        .arg(&script)
        .arg(url)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3")
}

fn start_levee(echo: &Echo, extra: &str) -> support::Levee {
    let setup = LeveeSetup::new();
    let cfg = setup.proxy_config(&[&format!("127.0.0.1:{}", echo.port)], extra);
    setup.start(&cfg)
}

#[test]
fn websocket_messages_pass_both_ways() {
    let echo = echo_server();
    let levee = start_levee(&echo, "");
    let url = format!("ws://127.0.0.1:{}/chat", levee.port);
    let out = client(levee.dir(), &url, &["one", "two"])
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
    let echo = echo_server();
    let levee = start_levee(&echo, "");
    let url = format!("ws://127.0.0.1:{}/live", levee.port);
    let mut child = client(levee.dir(), &url, &["before", "sleep:1.5", "after"]);
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
    assert!(levee.stderr().contains("reloaded"), "{}", levee.stderr());
}

#[test]
fn an_idle_tunnel_is_closed_after_tunnel_idle() {
    let echo = echo_server();
    let levee = start_levee(&echo, "[timeouts]\ntunnel_idle = \"500ms\"\n");
    let url = format!("ws://127.0.0.1:{}/idle", levee.port);
    let out = client(levee.dir(), &url, &["first", "sleep:2", "second"])
        .wait_with_output()
        .expect("client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout, "echo first\n");
    assert!(!out.status.success(), "the tunnel should have been closed");
}

#[test]
fn websocket_over_a_tls_listener() {
    let echo = echo_server();
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
    std::fs::write(&script, CLIENT).expect("write client.py");
    let out = Command::new(python())
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
