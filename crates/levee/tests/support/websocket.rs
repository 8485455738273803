//! A WebSocket echo server and client (Python `websockets`), real peers
//! for tunnels through levee.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{TempDir, free_port, poll};

pub const WS_ECHO: &str = r#"
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
/// reply; a `sleep:N` argument waits N seconds instead, and `wait` waits
/// for a line on stdin. Exits 0 when done.
pub const WS_CLIENT: &str = r#"
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
            if arg == "wait":
                await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
                continue
            await ws.send(arg)
            print(await ws.recv(), flush=True)
asyncio.run(main())
"#;

/// A Python that has `websockets`.
pub fn ws_python() -> &'static str {
    static FOUND: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    FOUND.get_or_init(|| super::python_with("websockets"))
}

pub struct WsEcho {
    child: Child,
    pub port: u16,
    _dir: TempDir,
}

impl Drop for WsEcho {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An echo server on a free port: each message comes back as `echo MESSAGE`.
pub fn ws_echo() -> WsEcho {
    let dir = TempDir::new("ws");
    let script = dir.join("echo.py");
    std::fs::write(&script, WS_ECHO).expect("write echo.py");
    let port = free_port();
    let child = Command::new(ws_python())
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
    WsEcho {
        child,
        port,
        _dir: dir,
    }
}

/// Runs [`WS_CLIENT`] on `url` with `args`, its stdin, stdout and stderr piped.
pub fn ws_client(dir: &std::path::Path, url: &str, args: &[&str]) -> Child {
    let script = dir.join("client.py");
    std::fs::write(&script, WS_CLIENT).expect("write client.py");
    Command::new(ws_python())
        .arg(&script)
        .arg(url)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3")
}
