//! levee as a system service: privileges dropped for good after binding,
//! the default config path and `LEVEE_CONFIG`, `levee config dump`,
//! readiness told to systemd (`NOTIFY_SOCKET`), the unit file checked by
//! systemd itself, and the probes on the admin listener.

mod support;

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use support::{LeveeSetup, TempDir, admin_raw, admin_request, free_port, levee_cmd, poll};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .is_ok_and(|s| s.lines().any(|l| l.starts_with("Uid:\t0\t")))
}

/// The `Name:` line of `/proc/PID/status` (or of a thread's), its value.
fn status_line(path: &str, name: &str) -> String {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("no {name} in {path}"))
}

/// Waits until `port` on loopback accepts (levee's admin listener).
fn wait_listening(port: u16) {
    poll(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    })
    .unwrap_or_else(|| panic!("nothing listens on {port}"));
}

fn respond_config(port: u16, extra: &str) -> String {
    format!(
        "{extra}\n[log]\naccess = \"off\"\n[[listener]]\naddress = \"127.0.0.1:{port}\"\n\
         [[route]]\nrespond = \"up\"\n"
    )
}

/// Started as root with `user = "nobody"`, every thread of levee runs as
/// nobody/nogroup in all four ids, with no supplementary group, no
/// capability left to use or regain, and `no_new_privs`: nothing it
/// executes can make it root again.
#[test]
fn privileges_are_dropped_for_good_before_any_request() {
    if !is_root() {
        eprintln!("skipped: dropping privileges needs the test to run as root");
        return;
    }
    let setup = LeveeSetup::new();
    let port = setup.port;
    let pid_file = setup.pid_file();
    let config = respond_config(
        port,
        &format!(
            "user = \"nobody\"\ngroup = \"nogroup\"\nworkers = 2\npid_file = \"{}\"",
            pid_file.display()
        ),
    );
    let levee = setup.start(&config);
    assert_eq!(support::curl_ok(&[&levee.url("/")]), "up");
    let pid = levee.pid();
    let tasks: Vec<String> = fs::read_dir(format!("/proc/{pid}/task"))
        .expect("tasks")
        .filter_map(Result::ok)
        .map(|e| {
            format!(
                "/proc/{pid}/task/{}/status",
                e.file_name().to_string_lossy()
            )
        })
        .collect();
    assert!(
        tasks.len() >= 3,
        "the control thread and two workers: {tasks:?}"
    );
    for status in &tasks {
        assert_eq!(
            status_line(status, "Uid"),
            "65534\t65534\t65534\t65534",
            "{status}"
        );
        assert_eq!(
            status_line(status, "Gid"),
            "65534\t65534\t65534\t65534",
            "{status}"
        );
        assert_eq!(status_line(status, "Groups"), "65534", "{status}");
        for caps in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
            assert_eq!(
                status_line(status, caps),
                "0000000000000000",
                "{caps} of {status}"
            );
        }
        assert_eq!(status_line(status, "NoNewPrivs"), "1", "{status}");
    }
    // Made as root, given to nobody, so a new binary (as nobody) can rewrite it.
    let owner = std::os::unix::fs::MetadataExt::uid(&fs::metadata(&pid_file).expect("pid file"));
    assert_eq!(owner, 65534);
}

/// The other way round: started as an ordinary user, levee cannot become
/// another one, and says so at the key instead of running as the wrong user.
#[test]
fn a_user_levee_cannot_become_refuses_the_start() {
    if !is_root() {
        eprintln!("skipped: starting levee as another user needs root");
        return;
    }
    let dir = TempDir::new("notroot");
    let port = free_port();
    let file = dir.join("levee.toml");
    fs::write(&file, respond_config(port, "user = \"root\"")).expect("write");
    // nobody must be able to read the config.
    Command::new("chmod")
        .arg("755")
        .arg(dir.path())
        .status()
        .expect("chmod");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_levee"))
        .args(["run", "-c"])
        .arg(&file)
        .output()
        .expect("setpriv (util-linux)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("levee.toml:1:8: user: levee must be started as root"),
        "{stderr}"
    );
}

#[test]
fn the_config_is_levee_config_else_etc_levee() {
    let dir = TempDir::new("cfgpath");
    let file = dir.join("mine.toml");
    fs::write(&file, respond_config(free_port(), "")).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_levee"))
        .args(["check", "--file-only"])
        .env("LEVEE_CONFIG", &file)
        .output()
        .expect("levee");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("{} is ok", file.display())),
        "{stdout}"
    );

    if !std::path::Path::new("/etc/levee/levee.toml").exists() {
        let out = Command::new(env!("CARGO_BIN_EXE_levee"))
            .args(["check", "--file-only"])
            .env_remove("LEVEE_CONFIG")
            .output()
            .expect("levee");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("/etc/levee/levee.toml: cannot read the config file"),
            "{stderr}"
        );
    }
    let help = levee_cmd(&["run", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("-c, --config <FILE>"), "{help}");
    assert!(help.contains("/etc/levee/levee.toml"), "{help}");
    assert!(help.contains("LEVEE_CONFIG"), "{help}");
}

#[test]
fn config_dump_shows_every_default_and_no_secret() {
    let dir = TempDir::new("dump");
    let file = dir.join("levee.toml");
    let config = r#"
[[listener]]
address = "127.0.0.1:1143"
protocol = "imap"
[listener.mail]
auth_http = "http://127.0.0.1:9000/auth"
auth_http_header = { X-Auth-Key = "hush-key-123" }
master_user = "master"
master_password = "hush-pass-456"

[[listener]]
address = "127.0.0.1:1180"

[[route]]
respond = "x"
"#;
    fs::write(&file, config).expect("write");
    let shown = file.display().to_string();
    let out = levee_cmd(&["config", "dump", "-c", &shown]);
    let dump = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dump.contains("hush"), "a secret in the dump:\n{dump}");
    assert!(dump.contains("master_password = \"<redacted>\""), "{dump}");
    for default in [
        "grace = \"30s\"",
        "max_concurrent_streams = 128",
        "backlog = 4096",
        "error = \"stderr\"",
    ] {
        assert!(dump.contains(default), "no `{default}` in\n{dump}");
    }
    // What it prints is a config levee takes.
    let again = dir.join("dump.toml");
    fs::write(&again, &dump).expect("write dump");
    let out = levee_cmd(&["check", "--file-only", "-c", &again.display().to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What levee sends to `NOTIFY_SOCKET`, one datagram at a time.
struct Notified {
    socket: UnixDatagram,
    _dir: TempDir,
    path: PathBuf,
}

impl Notified {
    fn new() -> Notified {
        let dir = TempDir::new("notify");
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind notify socket");
        socket
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        Notified {
            socket,
            _dir: dir,
            path,
        }
    }

    fn next(&self) -> String {
        let mut buf = [0u8; 4096];
        let n = self
            .socket
            .recv(&mut buf)
            .expect("a notification within 20 s");
        String::from_utf8_lossy(&buf[..n]).trim_end().to_owned()
    }
}

/// `Type=notify`: READY=1 comes once the listeners accept, a reload is
/// bracketed by RELOADING=1 and READY=1, a stop says STOPPING=1.
#[test]
fn systemd_hears_ready_reloading_and_stopping() {
    let notified = Notified::new();
    let setup = LeveeSetup::new();
    let port = setup.port;
    let config = respond_config(port, "");
    let notify = notified.path.display().to_string();
    fs::write(setup.config_path(), &config).expect("write");
    let shown = setup.config_path().display().to_string();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_levee"));
    cmd.args(["run", "-c", &shown])
        .env("NOTIFY_SOCKET", &notify);
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("levee");
    let ready = notified.next();
    // Ready means accepting: a connection made right now is served.
    let served = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    let pid = child.id().to_string();
    let kill = |sig: &str| {
        Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("kill");
    };
    kill("-HUP");
    let reloading = notified.next();
    let ready_again = notified.next();
    kill("-TERM");
    let stopping = notified.next();
    let exited = poll(Duration::from_secs(10), || child.try_wait().ok().flatten());
    if exited.is_none() {
        let _ = child.kill();
    }
    assert_eq!(ready, "READY=1");
    assert!(served, "READY=1 before {port} accepted");
    assert_eq!(reloading, "RELOADING=1");
    assert_eq!(ready_again, "READY=1");
    assert_eq!(stopping, "STOPPING=1");
    assert!(exited.is_some_and(|s| s.success()), "{exited:?}");
}

/// The unit parses as systemd reads it (`systemd-analyze verify`, on a copy
/// naming the binary under test), and runs under `systemd-run` where this
/// machine's init is systemd.
#[test]
fn the_systemd_unit_verifies() {
    let unit = fs::read_to_string(repo().join("dist/levee.service")).expect("dist/levee.service");
    for line in [
        "Type=notify",
        "ExecReload=/usr/bin/levee reload",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
    ] {
        assert!(unit.lines().any(|l| l == line), "no `{line}` in the unit");
    }
    let Some(analyze) = support::find_in_path("systemd-analyze") else {
        panic!("systemd-analyze not installed (Debian's systemd package)");
    };
    let dir = TempDir::new("unit");
    let copy = dir.join("levee.service");
    fs::write(
        &copy,
        unit.replace("/usr/bin/levee", env!("CARGO_BIN_EXE_levee")),
    )
    .expect("write");
    let out = Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
        .expect("systemd-analyze");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Without systemd as init there is no manager to ask about the
    // dependencies (network-online.target): only that may be said.
    let about_the_unit: Vec<&str> = said
        .lines()
        .filter(|l| {
            l.contains("levee.service")
                && !l.contains("Failed to connect")
                && !l.contains("network-online")
        })
        .collect();
    assert!(about_the_unit.is_empty(), "systemd-analyze verify:\n{said}");

    if !std::path::Path::new("/run/systemd/system").is_dir() {
        eprintln!(
            "systemd-run part skipped: this machine's init is not systemd \
             (/run/systemd/system is missing), so there is no manager to run a unit"
        );
        return;
    }
    let port = free_port();
    let file = dir.join("levee.toml");
    fs::write(&file, respond_config(port, "")).expect("write");
    let unit_name = format!("levee-test-{}", std::process::id());
    let status = Command::new("systemd-run")
        .args([
            "--unit",
            &unit_name,
            "--property=Type=notify",
            "--wait",
            "--collect",
        ])
        .arg("--no-block")
        .arg(env!("CARGO_BIN_EXE_levee"))
        .args(["run", "-c"])
        .arg(&file)
        .status()
        .expect("systemd-run");
    assert!(status.success());
    let up = poll(Duration::from_secs(15), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    let _ = Command::new("systemctl")
        .args(["stop", &unit_name])
        .status();
    assert!(up.is_some(), "levee under systemd-run never listened");
}

#[test]
fn the_shipped_configs_pass_check() {
    for file in ["dist/levee.toml", "dist/container.toml"] {
        let path = repo().join(file).display().to_string();
        let out = levee_cmd(&["check", "--file-only", "-c", &path]);
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Probes need no credentials even where everything else does; `/readyz`
/// says 503 while an upstream's name has not resolved.
#[test]
fn probes_answer_without_credentials() {
    let setup = LeveeSetup::new();
    let admin = free_port();
    let token = setup.dir.join("admin.token");
    fs::write(&token, "probe-test-token-0123456789\n").expect("token");
    let config = format!(
        "[log]\naccess = \"off\"\n[[listener]]\naddress = \"127.0.0.1:{}\"\n\
         [[route]]\nproxy = \"app\"\n[upstream.app]\nservers = [\"127.0.0.1:9\", \"levee-no-such-name.invalid:80\"]\n\
         [admin]\naddress = \"127.0.0.1:{admin}\"\ntoken_file = \"{}\"\n",
        setup.port,
        token.display()
    );
    let _levee = setup.start(&config);
    wait_listening(admin);
    let (status, body) = admin_request(admin, "GET", "/healthz", "");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, body) = admin_request(admin, "GET", "/readyz", "");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("upstream app: `levee-no-such-name.invalid:80` has not resolved"),
        "{body}"
    );
    let (status, body) = admin_request(admin, "GET", "/version", "");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    // Everything else still wants the token.
    let (status, _) = admin_request(admin, "GET", "/metrics", "");
    assert_eq!(status, 401);
    // A probe still comes from this listener's own Host, like any request.
    let (status, _, _) = admin_raw(
        admin,
        "GET /healthz HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 421);
    let (status, _, metrics) = admin_raw(
        admin,
        &format!(
            "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{admin}\r\n\
             Authorization: Bearer probe-test-token-0123456789\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(status, 200);
    let build_info = format!(
        "levee_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    for family in [
        build_info.as_str(),
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_start_time_seconds ",
    ] {
        assert!(metrics.contains(family), "no {family} in /metrics");
    }
}

/// With every name resolved, and until levee stops, `/readyz` says ready.
#[test]
fn readyz_is_ready_when_everything_resolved() {
    let setup = LeveeSetup::new();
    let admin = free_port();
    let config = format!(
        "[log]\naccess = \"off\"\n[[listener]]\naddress = \"127.0.0.1:{}\"\n\
         [[route]]\nproxy = \"app\"\n[upstream.app]\nservers = [\"localhost:9\"]\n\
         [admin]\naddress = \"127.0.0.1:{admin}\"\n",
        setup.port
    );
    let _levee = setup.start(&config);
    let ready = poll(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", admin)).ok()?;
        let (status, body) = admin_request(admin, "GET", "/readyz", "");
        (status == 200).then_some(body)
    });
    assert_eq!(ready.as_deref(), Some("ready\n"));
}

/// A probe on a public listener is a route to the admin listener's probe
/// (docs/operations.md): `/healthz` answers there, and nothing else of
/// the admin listener does, whatever the spelling.
#[test]
fn a_public_route_reaches_the_probe_and_nothing_else() {
    let setup = LeveeSetup::new();
    let admin = free_port();
    let config = format!(
        "[log]\naccess = \"off\"\n[[listener]]\naddress = \"127.0.0.1:{}\"\n\
         [[route]]\npath = \"/healthz\"\nproxy = \"probes\"\npreserve_host = false\n\
         [[route]]\nrespond = \"site\"\n\
         [upstream.probes]\nservers = [\"127.0.0.1:{admin}\"]\n\
         [admin]\naddress = \"127.0.0.1:{admin}\"\n",
        setup.port
    );
    let levee = setup.start(&config);
    wait_listening(admin);
    assert_eq!(support::curl_ok(&[&levee.url("/healthz")]), "ok\n");
    for path in [
        "/metrics",
        "/healthz/../metrics",
        "/healthz%2F..%2Fmetrics",
        "/healthz/../upstreams",
        "//metrics",
    ] {
        let out = support::curl(&["--path-as-is", "-s", &levee.url(path)]);
        let body = String::from_utf8_lossy(&out.stdout);
        assert!(
            !body.contains("levee_build_info"),
            "{path} reached /metrics"
        );
        assert!(
            !body.contains("upstreams"),
            "{path} reached the API: {body}"
        );
    }
}
