//! The disk tier (`[cache.disk]`) in front of a real nginx origin: hits
//! sent with `sendfile` from the tier's files, objects too large for memory,
//! restarts (a clean stop and SIGKILL mid-fill: every later answer is the
//! origin's bytes), and a full file system (a small tmpfs) that leaves the
//! cache in memory without a client noticing.

mod support;

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use support::*;

/// A levee caching `nginx` with a memory tier of `memory` and a disk tier
/// in `dir`; returns it with its config (to start it again).
fn levee_with_disk(
    nginx: &Nginx,
    admin: u16,
    dir: &std::path::Path,
    memory: &str,
    disk: &str,
) -> (Levee, String) {
    let setup = LeveeSetup::new();
    let tail = format!(
        "max_object_size = \"{memory}\"\n\n[cache.disk]\npath = \"{}\"\n{disk}\n",
        dir.display()
    );
    let text = config(&setup, admin, &nginx.addr(), "", &tail);
    let levee = setup.start(&text);
    wait_disk_ready(admin);
    (levee, text)
}

fn wait_disk_ready(admin: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, body) = admin_request(admin, "GET", "/cache", "");
        if disk_state(&body) == "ready" {
            return;
        }
        assert!(Instant::now() < deadline, "disk tier not ready: {body}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// A new levee process with the config `text` (whose listener is `port`).
fn restart(port: u16, text: &str) -> Levee {
    let mut setup = LeveeSetup::new();
    setup.port = port;
    setup.start(text)
}

fn get(port: u16, path: &str, headers: &str) -> Response {
    let mut conn = RawConn::connect(port);
    conn.send(format!("GET {path} HTTP/1.1\r\nHost: site\r\n{headers}\r\n").as_bytes());
    conn.read_response("GET")
}

/// Whether every thread of `pid` is traced by `tracer` (strace -f -p has
/// attached to them all).
fn traced_by(pid: u32, tracer: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    let by = format!("{tracer}");
    let mut any = false;
    for task in tasks.flatten() {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        let tracer_of = status
            .lines()
            .find_map(|l| l.strip_prefix("TracerPid:"))
            .map(str::trim);
        if tracer_of != Some(by.as_str()) {
            return false;
        }
        any = true;
    }
    any
}

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// An object larger than memory takes goes to disk as it streams; its hits
/// come from the file (`tier=disk`), whole, ranged and as HEAD, sent with
/// sendfile(2) (seen by strace) rather than read into memory.
#[test]
fn large_objects_are_stored_on_disk_and_sent_with_sendfile() {
    let nginx = Nginx::start(ORIGIN);
    let body = bytes(3 << 20, 7);
    nginx.put_file("c/big.bin", &body);
    let dir = TempDir::new("disk");
    let admin = free_port();
    let (levee, _) = levee_with_disk(&nginx, admin, dir.path(), "1m", "max_size = \"64m\"");
    let miss = get(levee.port, "/c/big.bin", "");
    assert_eq!(miss.status, 200);
    assert_eq!(miss.body, body);
    assert_eq!(miss.header("cache-status"), Some("levee; fwd=miss; stored"));
    // Watch levee's threads while it answers a hit.
    let trace = dir.path().join("strace.log");
    let mut strace = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=sendfile", "-o"])
        .arg(&trace)
        .args(["-p", &levee.pid().to_string()])
        .spawn()
        .expect("strace is installed (scripts/test)");
    let attached = poll(Duration::from_secs(10), || {
        traced_by(levee.pid(), strace.id()).then_some(())
    });
    assert!(attached.is_some(), "strace never attached to every thread");
    let hit = get(levee.port, "/c/big.bin", "");
    thread::sleep(Duration::from_millis(300));
    let _ = Command::new("kill")
        .args(["-INT", &strace.id().to_string()])
        .status();
    let _ = strace.wait();
    assert_eq!(hit.status, 200);
    assert_eq!(hit.header("cache-status"), Some("levee; hit; tier=disk"));
    assert_eq!(hit.body, body, "the origin's bytes");
    let log = std::fs::read_to_string(&trace).unwrap_or_default();
    let sent: u64 = log
        .lines()
        .filter(|l| l.contains("sendfile("))
        .filter_map(|l| l.rsplit("= ").next()?.trim().parse::<u64>().ok())
        .sum();
    assert_eq!(
        sent,
        body.len() as u64,
        "the body went out by sendfile:\n{log}"
    );
    let part = get(levee.port, "/c/big.bin", "Range: bytes=1000-1999\r\n");
    assert_eq!(part.status, 206);
    assert_eq!(part.body, body[1000..2000]);
    let mut conn = RawConn::connect(levee.port);
    conn.send(b"HEAD /c/big.bin HTTP/1.1\r\nHost: site\r\n\r\n");
    let head = conn.read_response("HEAD");
    assert_eq!(head.header("content-length"), Some("3145728"));
    assert_eq!(nginx.wait_entries("/c/big.bin", 1).len(), 1);
    assert!(metric(admin, "levee_cache_tier_hits_total{tier=\"disk\"}").is_some_and(|n| n >= 3.0));
    assert!(metric(admin, "levee_cache_disk_entries").is_some_and(|n| n >= 1.0));
}

/// Objects in memory are written through: a restart (a clean stop, then a
/// new process on the same directory) serves them from disk at once, without
/// asking the origin, and `levee ctl cache stats` shows the tier.
#[test]
fn a_restart_keeps_what_was_stored() {
    let nginx = Nginx::start(ORIGIN);
    for i in 0..20 {
        nginx.put_file(&format!("c/{i}.txt"), &bytes(1000 + i, i as u8));
    }
    let dir = TempDir::new("disk");
    let admin = free_port();
    let (mut levee, text) = levee_with_disk(&nginx, admin, dir.path(), "8m", "max_size = \"64m\"");
    for i in 0..20 {
        assert_eq!(get(levee.port, &format!("/c/{i}.txt"), "").status, 200);
    }
    // Written through in the background: wait until all are on disk.
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(admin, "levee_cache_disk_entries") != Some(20.0) {
        assert!(Instant::now() < deadline, "written through");
        thread::sleep(Duration::from_millis(50));
    }
    levee.stop();
    levee.wait_exit(Duration::from_secs(10));
    let again = restart(levee.port, &text);
    wait_disk_ready(admin);
    for i in 0..20 {
        let r = get(again.port, &format!("/c/{i}.txt"), "");
        assert_eq!(
            r.header("cache-status"),
            Some("levee; hit; tier=disk"),
            "{i}"
        );
        assert_eq!(r.body, bytes(1000 + i, i as u8));
    }
    for i in 0..20 {
        assert_eq!(
            nginx.wait_entries(&format!("/c/{i}.txt"), 1).len(),
            1,
            "{i}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_levee"))
        .args([
            "ctl",
            "--admin",
            &format!("127.0.0.1:{admin}"),
            "cache",
            "stats",
        ])
        .output()
        .expect("levee ctl");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{table} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let disk_row = table
        .lines()
        .find(|l| l.starts_with("disk"))
        .expect("a disk row");
    let cells: Vec<&str> = disk_row.split_whitespace().collect();
    assert_eq!(cells.get(1), Some(&"20"), "{table}");
    assert_eq!(cells.get(3), Some(&"20"), "20 disk hits: {table}");
    assert_eq!(cells.last(), Some(&"ready"), "{table}");
}

/// SIGKILL while many responses are being stored (streamed to disk, too
/// large for memory): after a restart, every answer, hit or miss, is the
/// origin's bytes; what was complete before the kill is a hit.
#[test]
fn sigkill_during_fills_never_serves_a_torn_object() {
    let nginx = Nginx::start(ORIGIN);
    let files: Vec<(String, Vec<u8>)> = (0..12)
        .map(|i| {
            (
                format!("/slowc/{i}.bin"),
                bytes(120_000 + i * 1000, i as u8),
            )
        })
        .collect();
    for (path, body) in &files {
        nginx.put_file(path.trim_start_matches('/'), body);
    }
    nginx.put_file("c/done.bin", &bytes(300_000, 99));
    let dir = TempDir::new("disk");
    let admin = free_port();
    let (mut levee, text) = levee_with_disk(&nginx, admin, dir.path(), "64k", "max_size = \"64m\"");
    assert_eq!(get(levee.port, "/c/done.bin", "").status, 200);
    // Fills in flight (nginx sends 20 KB/s): killed mid-body.
    let port = levee.port;
    let clients: Vec<_> = files
        .iter()
        .map(|(path, _)| {
            let path = path.clone();
            thread::spawn(move || {
                let mut conn = RawConn::connect(port);
                conn.send(format!("GET {path} HTTP/1.1\r\nHost: site\r\n\r\n").as_bytes());
                let _ = conn.try_read_response("GET", Duration::from_secs(30));
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(1500));
    signal_pid(levee.pid(), "-KILL");
    levee.wait_exit(Duration::from_secs(10));
    for c in clients {
        let _ = c.join();
    }
    let again = restart(levee.port, &text);
    wait_disk_ready(admin);
    let done = get(again.port, "/c/done.bin", "");
    assert_eq!(done.header("cache-status"), Some("levee; hit; tier=disk"));
    assert_eq!(done.body, bytes(300_000, 99));
    // Each file at once (the origin is slow), twice: a miss or a hit,
    // always the origin's bytes.
    let port = again.port;
    let checks: Vec<_> = files
        .into_iter()
        .map(|(path, body)| {
            thread::spawn(move || {
                for _ in 0..2 {
                    let r = get(port, &path, "");
                    assert_eq!(r.status, 200, "{path}");
                    assert!(
                        r.body == body,
                        "{path}: {} bytes, not the origin's",
                        r.body.len()
                    );
                }
            })
        })
        .collect();
    for c in checks {
        c.join().expect("every answer is the origin's");
    }
    assert_eq!(
        metric(admin, "levee_cache_disk_errors_total{kind=\"corrupt\"}"),
        Some(0.0),
        "no torn file was even looked at"
    );
}

/// A disk tier on a file system that fills up (a 1 MiB tmpfs): writes fail
/// with ENOSPC, the tier turns writes off (counted, `degraded` in /cache),
/// and every client still gets the origin's bytes from memory or the origin.
#[test]
fn a_full_disk_leaves_the_cache_in_memory() {
    let dir = TempDir::new("tmpfs");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(dir.path())
        .status()
        .expect("mount");
    assert!(
        mounted.success(),
        "mounting a tmpfs needs root (CI runs as root)"
    );
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(dir.path().to_path_buf());
    let nginx = Nginx::start(ORIGIN);
    let files: Vec<(String, Vec<u8>)> = (0..8)
        .map(|i| (format!("/c/f{i}.bin"), bytes(300_000, i as u8)))
        .collect();
    for (path, body) in &files {
        nginx.put_file(path.trim_start_matches('/'), body);
    }
    let admin = free_port();
    let (levee, _) = levee_with_disk(&nginx, admin, dir.path(), "4m", "max_size = \"64m\"");
    for (path, body) in &files {
        let r = get(levee.port, path, "");
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.body, *body, "{path}");
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(admin, "levee_cache_disk_errors_total{kind=\"error\"}").unwrap_or(0.0) < 1.0 {
        assert!(Instant::now() < deadline, "the full disk is noticed");
        thread::sleep(Duration::from_millis(50));
    }
    let (_, status) = admin_request(admin, "GET", "/cache", "");
    assert_eq!(disk_state(&status), "degraded", "{status}");
    assert_eq!(metric(admin, "levee_cache_disk_writable"), Some(0.0));
    // Still a cache: hits from memory, the origin asked once per file.
    for (path, body) in &files {
        let r = get(levee.port, path, "");
        assert_eq!(r.header("cache-status"), Some("levee; hit"), "{path}");
        assert_eq!(r.body, *body);
        assert_eq!(nginx.wait_entries(path, 1).len(), 1, "{path}");
    }
}
