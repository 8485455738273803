//! What the fleet tests share: members (levee processes on 127.0.0.2, .3,
//! .4 with their admin listener on 127.0.0.1), a keep-alive HTTP client
//! that times each request, and metric and `levee ctl fleet` readers.
// Shared by test binaries, which export nothing: `pub` is for the test files.
#![allow(unreachable_pub)]
// Each test file uses a part of this.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::{Levee, LeveeSetup, free_port, levee_cmd, metric};

/// One member of a test fleet.
pub struct Member {
    /// Its instance name is `m{n}`.
    pub n: usize,
    pub levee: Levee,
    pub ip: String,
    pub port: u16,
    pub admin: u16,
}

impl Member {
    /// Starts member `n` (listening on 127.0.0.`n+2`) with `fleet` as its
    /// `[fleet]` body and `tables` appended (rate limits).
    pub fn start(n: usize, fleet: &str, tables: &str) -> Member {
        let setup = LeveeSetup::new();
        let ip = format!("127.0.0.{}", n + 2);
        let port = setup.port;
        let admin = free_port();
        let config = format!(
            r#"pid_file = "{pid}"
[log]
access = "off"
level = "info"

[[listener]]
address = "{ip}:{port}"

[[route]]
path = "/redeem"
respond = "redeemed"
rate_limit = "promo"

[[route]]
respond = "hello"

[admin]
address = "127.0.0.1:{admin}"

[fleet]
instance = "m{n}"
heartbeat = "200ms"
heartbeat_ttl = "1s"
{fleet}

{tables}
"#,
            pid = setup.pid_file().display(),
        );
        let mut levee = setup.spawn(&config);
        // The admin listener starts after the listeners are bound.
        levee.wait_port(admin);
        Member {
            n,
            levee,
            ip,
            port,
            admin,
        }
    }

    pub fn metric(&self, series: &str) -> f64 {
        metric(self.admin, series).unwrap_or(0.0)
    }

    /// `levee ctl fleet` against this member.
    pub fn ctl_fleet(&self) -> String {
        let out = levee_cmd(&[
            "ctl",
            "--admin",
            &format!("127.0.0.1:{}", self.admin),
            "fleet",
        ]);
        assert!(
            out.status.success(),
            "ctl fleet: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `levee ctl ARGS` against this member: whether it succeeded, and its
    /// output and errors.
    pub fn ctl(&self, args: &[&str]) -> (bool, String) {
        let admin = format!("127.0.0.1:{}", self.admin);
        let mut all = vec!["ctl", "--admin", &admin];
        all.extend_from_slice(args);
        let out = levee_cmd(&all);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// Waits until the member applies fleet limits (Redis reachable and
    /// local admissions charged).
    pub fn wait_redis_up(&self, timeout: Duration) -> bool {
        crate::support::poll(timeout, || {
            (self.metric("levee_fleet_redis_up") == 1.0).then_some(())
        })
        .is_some()
    }
}

/// Three members (127.0.0.2, .3, .4), each applying fleet limits and
/// counting three live members (the fallback's divisor) before it returns.
pub fn start_fleet(fleet: &str, tables: &str) -> Vec<Member> {
    let members: Vec<Member> = (0..3).map(|n| Member::start(n, fleet, tables)).collect();
    for m in &members {
        assert!(
            m.wait_redis_up(Duration::from_secs(15)),
            "member on {} never reached Redis; stderr:\n{}",
            m.ip,
            m.levee.stderr()
        );
    }
    for m in &members {
        let three = crate::support::poll(Duration::from_secs(10), || {
            m.ctl_fleet().contains("3 live member(s)").then_some(())
        });
        assert!(three.is_some(), "{}", m.ctl_fleet());
    }
    members
}

/// Pings from `from` until every one of `members` logged it (subscribers
/// connect on their own schedule); whether they did within 15 s.
pub fn ping_until_heard(from: &Member, members: &[Member], note: &str) -> bool {
    let sender = format!("from=m{}", from.n);
    crate::support::poll(Duration::from_secs(15), || {
        let out = levee_cmd(&[
            "ctl",
            "--admin",
            &format!("127.0.0.1:{}", from.admin),
            "fleet",
            "ping",
            note,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(300));
        members
            .iter()
            .all(|m| {
                m.levee.stderr().lines().any(|l| {
                    l.contains("fleet bus: ping") && l.contains(&sender) && l.contains(note)
                })
            })
            .then_some(())
    })
    .is_some()
}

/// A rate-limit rule on `query:code` with fleet scope.
pub fn promo(rate: &str, burst: u32) -> String {
    format!(
        "[rate_limit.promo]\nkey = \"query:code\"\nrate = \"{rate}\"\nburst = {burst}\nscope = \"fleet\"\n"
    )
}

/// A keep-alive HTTP/1.1 client that reconnects when the server closes.
pub struct Client {
    addr: String,
    conn: Option<TcpStream>,
}

impl Client {
    pub fn new(ip: &str, port: u16) -> Client {
        Client {
            addr: format!("{ip}:{port}"),
            conn: None,
        }
    }

    /// GETs `path`; the status and how long the answer took (`None` when
    /// no answer came within 10 s).
    pub fn get(&mut self, path: &str) -> (Option<u16>, Duration) {
        let start = Instant::now();
        for _ in 0..2 {
            if self.conn.is_none() {
                let Ok(s) = TcpStream::connect(&self.addr) else {
                    continue;
                };
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let _ = s.set_nodelay(true);
                self.conn = Some(s);
            }
            match self.exchange(path) {
                Some(status) => return (Some(status), start.elapsed()),
                None => self.conn = None,
            }
        }
        (None, start.elapsed())
    }

    fn exchange(&mut self, path: &str) -> Option<u16> {
        let s = self.conn.as_mut()?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: fleet\r\n\r\n");
        s.write_all(req.as_bytes()).ok()?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = s.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let status = head.split(' ').nth(1)?.parse().ok()?;
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < end + length {
            let n = s.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        if head.contains("connection: close") {
            self.conn = None;
        }
        Some(status)
    }
}

/// What a run of requests got.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub admitted: u32,
    pub refused: u32,
    pub other: u32,
    pub unanswered: u32,
    pub slowest: Duration,
}

impl Tally {
    pub fn add(&mut self, (status, took): (Option<u16>, Duration)) {
        match status {
            Some(200) => self.admitted += 1,
            Some(429) => self.refused += 1,
            Some(_) => self.other += 1,
            None => self.unanswered += 1,
        }
        self.slowest = self.slowest.max(took);
    }

    pub fn merge(&mut self, o: &Tally) {
        self.admitted += o.admitted;
        self.refused += o.refused;
        self.other += o.other;
        self.unanswered += o.unanswered;
        self.slowest = self.slowest.max(o.slowest);
    }
}

/// Sends `n` requests for `path` to `member` over one keep-alive connection.
pub fn send(member: &Member, path: &str, n: u32) -> Tally {
    let mut c = Client::new(&member.ip, member.port);
    let mut t = Tally::default();
    for _ in 0..n {
        t.add(c.get(path));
    }
    t
}
