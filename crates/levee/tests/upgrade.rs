//! Zero-downtime binary upgrade: `levee upgrade` under wrk load, with a
//! WebSocket tunnel and an IMAP IDLE session open. No request fails, the
//! new process serves new connections, and the old one keeps its sessions
//! until they end, then exits. Real peers: nginx as the app, Python's
//! websockets, Dovecot behind the IMAP listener.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Dovecot, LeveeSetup, Nginx, curl_ok, free_port, levee_cmd, poll};

/// A raw IMAP connection, read line by line.
struct Imap {
    stream: TcpStream,
    seen: String,
}

impl Imap {
    fn connect(port: u16) -> Imap {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to IMAP");
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let mut imap = Imap {
            stream,
            seen: String::new(),
        };
        imap.expect("* OK");
        imap
    }

    fn send(&mut self, line: &str) {
        self.stream
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("write IMAP");
    }

    /// Reads until a line starts with `prefix`; that line.
    fn expect(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(line) = self.seen.lines().find(|l| l.starts_with(prefix)) {
                let line = line.to_owned();
                let end = self.seen.find(&line).map_or(0, |i| i + line.len());
                self.seen.drain(..end);
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no `{prefix}` line; got {:?}",
                self.seen
            );
            let mut buf = [0u8; 4096];
            match self.stream.read(&mut buf) {
                Ok(0) => panic!("IMAP connection closed; got {:?}", self.seen),
                Ok(n) => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("IMAP read: {e}"),
            }
        }
    }
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or_default()
            .trim_start()
            .starts_with('Z')
    })
}

#[test]
fn an_upgrade_under_load_drops_nothing_and_old_sessions_finish_on_the_old_process() {
    let nginx = Nginx::start_default();
    let echo = support::ws_echo();
    let dovecot = Dovecot::start(&[("alice", "secret")]);
    let setup = LeveeSetup::new();
    let http = setup.port;
    let imap = free_port();
    let users = setup.dir.join("users");
    std::fs::write(&users, format!("alice 127.0.0.1:{}\n", dovecot.imap_port)).expect("users");
    let config = format!(
        r#"pid_file = "{pid}"
control_socket = "{control}"
workers = 2

[log]
access = "off"

[timeouts]
grace = "60s"

[[listener]]
address = "127.0.0.1:{http}"

[[listener]]
address = "127.0.0.1:{imap}"
protocol = "imap"
[listener.mail]
user_map = "{users}"

[[route]]
path = "/ws/"
proxy = "ws"

[[route]]
proxy = "app"

[upstream.app]
servers = ["{app}"]

[upstream.ws]
servers = ["127.0.0.1:{ws}"]
"#,
        pid = setup.pid_file().display(),
        control = setup.dir.join("control.sock").display(),
        users = users.display(),
        app = nginx.addr(),
        ws = echo.port,
    );
    let mut levee = setup.start(&config);
    let old = levee.pid();

    // A WebSocket session and an IMAP IDLE session, open before the upgrade.
    let url = format!("ws://127.0.0.1:{http}/ws/live");
    let mut ws = support::ws_client(levee.dir(), &url, &["before", "wait", "after"]);
    let mut ws_out = BufReader::new(ws.stdout.take().expect("stdout")).lines();
    assert_eq!(
        ws_out.next().and_then(Result::ok).as_deref(),
        Some("echo before")
    );
    let mut idle = Imap::connect(imap);
    idle.send("a1 LOGIN alice secret");
    idle.expect("a1 OK");
    idle.send("a2 SELECT INBOX");
    idle.expect("a2 OK");
    idle.send("a3 IDLE");
    idle.expect("+ ");

    // Load, with the upgrade in the middle of it.
    let wrk = Command::new("wrk")
        .args(["-t2", "-c16", "-d6s", &format!("http://127.0.0.1:{http}/")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wrk not installed: run scripts/test");
    std::thread::sleep(Duration::from_millis(1500));
    let config_path = levee.config_path().display().to_string();
    let out = levee_cmd(&["upgrade", "-c", &config_path]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{said}{}\nlevee's stderr:\n{}",
        String::from_utf8_lossy(&out.stderr),
        levee.stderr()
    );
    let new: u32 = said
        .split("pid ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {said:?}"));
    assert_ne!(new, old);
    let pid_file = levee.pid_file();
    let named = poll(Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&pid_file).ok()?;
        (text.trim() == new.to_string()).then_some(())
    });
    assert!(named.is_some(), "pid_file does not name the new process");

    let wrk = wrk.wait_with_output().expect("wrk");
    let report = String::from_utf8_lossy(&wrk.stdout);
    assert!(
        wrk.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&wrk.stderr)
    );
    let requests: u64 = report
        .lines()
        .find_map(|l| {
            l.trim()
                .split(" requests in")
                .next()
                .filter(|_| l.contains(" requests in"))
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no request count in {report}"));
    assert!(requests > 1000, "{report}");
    // Shown with --nocapture: the figures of a run.
    eprintln!("wrk across the upgrade:\n{report}");
    assert!(
        !report.contains("Socket errors"),
        "requests failed across the upgrade:\n{report}"
    );
    assert!(
        !report.contains("Non-2xx"),
        "requests failed across the upgrade:\n{report}"
    );

    // The new process serves new connections, HTTP and IMAP alike.
    assert!(curl_ok(&[&levee.url("/")]).contains("hello from"));
    let mut fresh = Imap::connect(imap);
    fresh.send("b1 LOGIN alice secret");
    fresh.expect("b1 OK");
    fresh.send("b2 LOGOUT");
    fresh.expect("b2 OK");
    assert!(alive(new));

    // The old process is still there, for its sessions, which still work.
    assert!(levee.is_running(), "the old process left its sessions");
    // Logged as the old process begins to stop, which the new one's
    // serving does not wait for.
    assert!(
        levee.wait_stderr("upgraded: no new connections here", Duration::from_secs(10)),
        "{}",
        levee.stderr()
    );
    ws.stdin
        .as_mut()
        .expect("stdin")
        .write_all(b"\n")
        .expect("to the client");
    assert_eq!(
        ws_out.next().and_then(Result::ok).as_deref(),
        Some("echo after")
    );
    assert!(ws.wait().expect("client").success());
    idle.send("DONE");
    idle.expect("a3 OK");
    idle.send("a4 LOGOUT");
    idle.expect("a4 OK");
    drop(idle);

    // With its sessions over, it exits, long before the 60 s grace.
    let status = levee.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "{status:?}\n{}", levee.stderr());
    assert!(alive(new), "the new process went with the old one");
    assert!(curl_ok(&[&format!("http://127.0.0.1:{http}/")]).contains("hello from"));
    let out = levee_cmd(&["stop", "-c", &config_path]);
    assert!(out.status.success());
    let gone = poll(Duration::from_secs(20), || (!alive(new)).then_some(()));
    assert!(gone.is_some(), "the new process did not stop");
}

/// A new binary that cannot start leaves the old one serving, and `levee
/// upgrade` says why and exits 1.
#[test]
fn a_failed_upgrade_keeps_the_old_process() {
    let setup = LeveeSetup::new();
    let port = setup.port;
    let config = format!(
        "control_socket = \"{}\"\n[log]\naccess = \"off\"\n[[listener]]\naddress = \"127.0.0.1:{port}\"\n\
         [[route]]\nrespond = \"old\"\n",
        setup.dir.join("control.sock").display()
    );
    let levee = setup.start(&config);
    let config_path = levee.config_path().display().to_string();
    // `false` exits 1 at once: never ready.
    let out = levee_cmd(&["upgrade", "-c", &config_path, "--binary", "/bin/false"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the new process exited"), "{stderr}");
    assert_eq!(curl_ok(&[&levee.url("/")]), "old");
    // And a second try with the real binary works from there.
    let out = levee_cmd(&["upgrade", "-c", &config_path]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(curl_ok(&[&levee.url("/")]), "old");
}

/// Without `control_socket` there is nothing to upgrade through.
#[test]
fn an_upgrade_needs_a_control_socket() {
    let setup = LeveeSetup::new();
    let config = format!(
        "[[listener]]\naddress = \"127.0.0.1:{}\"\n[[route]]\nrespond = \"x\"\n",
        setup.port
    );
    std::fs::write(setup.config_path(), config).expect("write");
    let out = levee_cmd(&["upgrade", "-c", &setup.config_path().display().to_string()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("sets no control_socket"), "{stderr}");
}

/// SIGUSR2 upgrades as nginx's does, the admin listener included: the new
/// process answers on the same admin address, and the old one, with
/// nothing open, exits at once.
#[test]
fn usr2_upgrades_and_the_admin_listener_moves_along() {
    let setup = LeveeSetup::new();
    let port = setup.port;
    let admin = free_port();
    let config = format!(
        "pid_file = \"{}\"\ncontrol_socket = \"{}\"\n[log]\naccess = \"off\"\n\
         [[listener]]\naddress = \"127.0.0.1:{port}\"\n[[route]]\nrespond = \"x\"\n\
         [admin]\naddress = \"127.0.0.1:{admin}\"\n",
        setup.pid_file().display(),
        setup.dir.join("control.sock").display()
    );
    let mut levee = setup.start(&config);
    let old = levee.pid();
    support::signal_pid(old, "-USR2");
    let pid_file = levee.pid_file();
    let new = poll(Duration::from_secs(20), || {
        let pid: u32 = std::fs::read_to_string(&pid_file)
            .ok()?
            .trim()
            .parse()
            .ok()?;
        (pid != old).then_some(pid)
    })
    .unwrap_or_else(|| panic!("no new pid; stderr:\n{}", levee.stderr()));
    let status = levee.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
    assert!(alive(new));
    let (status, body) = support::admin_request(admin, "GET", "/healthz", "");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    assert_eq!(curl_ok(&[&format!("http://127.0.0.1:{port}/")]), "x");
    support::signal_pid(new, "-TERM");
    let gone = poll(Duration::from_secs(20), || (!alive(new)).then_some(()));
    assert!(gone.is_some(), "the new process did not stop");
}
