//! `levee check` is the truth: a config it passes starts, and one that
//! `levee run` or a reload would refuse fails it, at FILE:LINE:COLUMN and
//! the key. Each case here is run through both `check` and `run`.

mod support;

use std::fs;
use std::path::Path;
use std::time::Duration;

use support::{Dnsmasq, LeveeSetup, TempDir, curl_ok, free_port, levee_cmd, poll};

/// The 1-based line of the first occurrence of `marker` in `text`.
fn line_of(text: &str, marker: &str) -> usize {
    let at = text
        .find(marker)
        .unwrap_or_else(|| panic!("`{marker}` not in the config"));
    text[..at].matches('\n').count() + 1
}

/// The stderr line reporting `key` at line `line` of `file`, if any: one
/// with `FILE:LINE:COLUMN: KEY: MESSAGE` in it (a log line has a time and
/// a level before it).
fn reported<'a>(stderr: &'a str, file: &str, line: usize, key: &str) -> Option<&'a str> {
    let place = format!("{file}:{line}:");
    stderr.lines().find(|l| {
        let Some(at) = l.find(&place) else {
            return false;
        };
        let rest = &l[at + place.len()..];
        let Some((column, rest)) = rest.split_once(':') else {
            return false;
        };
        column.parse::<usize>().is_ok() && rest.starts_with(&format!(" {key}: "))
    })
}

/// What `levee check` printed (stdout, stderr) and whether it passed.
fn check(file: &Path) -> (bool, String, String) {
    let out = levee_cmd(&["check", "-c", &file.display().to_string()]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One config that start-up refuses, and the key it is refused at.
struct Case {
    what: &'static str,
    config: String,
    key: &'static str,
    /// Text on the line the error must point at.
    marker: &'static str,
}

fn cases(dir: &TempDir, port: u16) -> Vec<Case> {
    let listener = format!("[[listener]]\naddress = \"127.0.0.1:{port}\"\n");
    let not_bcrypt = dir.join("sha.htpasswd");
    fs::write(&not_bcrypt, "bob:{SHA}fEqNCco3Yq9h5ZUglD3CZJT4lBs=\n").expect("write htpasswd");
    let bad_map = dir.join("users");
    fs::write(&bad_map, "bob\n").expect("write user map");
    let root = dir.path().display();
    vec![
        Case {
            what: "a missing auth_basic_file",
            config: format!(
                "{listener}[[route]]\nrespond = \"x\"\nauth_basic_file = \"{root}/missing.htpasswd\"\n"
            ),
            key: "route[0].auth_basic_file",
            marker: "auth_basic_file",
        },
        Case {
            what: "an htpasswd that is not bcrypt",
            config: format!(
                "{listener}[[route]]\nrespond = \"x\"\nauth_basic_file = \"{}\"\n",
                not_bcrypt.display()
            ),
            key: "route[0].auth_basic_file",
            marker: "auth_basic_file",
        },
        Case {
            what: "an IPv4-mapped listener address",
            config: format!(
                "[[listener]]\naddress = \"[::ffff:127.0.0.1]:{port}\"\n[[route]]\nrespond = \"x\"\n"
            ),
            key: "listener[0].address",
            marker: "address",
        },
        Case {
            what: "an address the machine does not have",
            // TEST-NET-1 (RFC 5737): assigned to no host.
            config: format!(
                "{listener}[[listener]]\naddress = \"192.0.2.1:{port}\"\n[[route]]\nrespond = \"x\"\n"
            ),
            key: "listener[1].address",
            marker: "192.0.2.1",
        },
        Case {
            what: "a rewrite regex that does not compile",
            config: format!(
                "{listener}[[route]]\nrespond = \"x\"\n[[route.rewrite]]\nmatch = \"^/(a\"\nto = \"/b\"\n"
            ),
            key: "route[0].rewrite[0].match",
            marker: "match",
        },
        Case {
            what: "a rewrite capture past the pattern's groups",
            config: format!(
                "{listener}[[route]]\nrespond = \"x\"\n[[route.rewrite]]\nmatch = \"^/(a)\"\nto = \"/b/$2\"\n"
            ),
            key: "route[0].rewrite[0].to",
            marker: "to =",
        },
        Case {
            what: "a missing static root",
            config: format!("{listener}[[route]]\nstatic = \"{root}/no-such-root\"\n"),
            key: "route[0].static",
            marker: "static",
        },
        Case {
            what: "a missing pid-file directory",
            config: format!(
                "pid_file = \"{root}/no-such-dir/levee.pid\"\n{listener}[[route]]\nrespond = \"x\"\n"
            ),
            key: "pid_file",
            marker: "pid_file",
        },
        Case {
            what: "a missing log directory",
            config: format!(
                "[log]\naccess = \"{root}/no-such-dir/access.log\"\n{listener}[[route]]\nrespond = \"x\"\n"
            ),
            key: "log.access",
            marker: "access",
        },
        Case {
            what: "a mail user map that does not load",
            config: format!(
                "[[listener]]\naddress = \"127.0.0.1:{port}\"\nprotocol = \"imap\"\n\
                 [listener.mail]\nuser_map = \"{}\"\n",
                bad_map.display()
            ),
            key: "listener[0].mail.user_map",
            marker: "user_map",
        },
        Case {
            what: "an upstream CA file that is missing",
            config: format!(
                "{listener}[[route]]\nproxy = \"app\"\n[upstream.app]\nservers = [\"127.0.0.1:9\"]\n\
                 [upstream.app.tls]\nca = \"{root}/no-such-ca.pem\"\n"
            ),
            key: "upstream.app.tls.ca",
            marker: "ca =",
        },
        Case {
            what: "a mirrors GeoIP database that does not load",
            config: format!(
                "{listener}[[route]]\nmirrors = \"dl\"\n[mirrors.dl]\nroot = \"{root}\"\n\
                 state_dir = \"{root}/state\"\ngeoip = \"{}\"\n\
                 [[mirrors.dl.mirror]]\nname = \"a\"\nhttp = \"http://127.0.0.1:1\"\n",
                not_bcrypt.display()
            ),
            key: "mirrors.dl.geoip",
            marker: "geoip",
        },
        Case {
            what: "a mirrors state directory under a file",
            config: format!(
                "{listener}[[route]]\nmirrors = \"dl\"\n[mirrors.dl]\nroot = \"{root}\"\n\
                 state_dir = \"{}/state\"\n\
                 [[mirrors.dl.mirror]]\nname = \"a\"\nhttp = \"http://127.0.0.1:1\"\n",
                bad_map.display()
            ),
            key: "mirrors.dl.state_dir",
            marker: "state_dir",
        },
        Case {
            what: "two identical routes",
            config: format!(
                "{listener}[[route]]\npath = \"/a/\"\nrespond = \"1\"\n[[route]]\npath = \"/a/\"\nrespond = \"2\"\n"
            ),
            key: "route[1].path",
            marker: "path = \"/a/\"\nrespond = \"2\"",
        },
    ]
}

/// Regression: each of these passed `levee check` (or was only a warning)
/// while `levee run` refused it, or started it broken.
#[test]
fn check_refuses_what_run_refuses_at_the_same_key() {
    let dir = TempDir::new("check-truth");
    let port = free_port();
    for case in cases(&dir, port) {
        let Case {
            what,
            config,
            key,
            marker,
        } = case;
        let setup = LeveeSetup::new();
        let file = setup.config_path();
        fs::write(&file, &config).expect("write config");
        let shown = file.display().to_string();
        let line = line_of(&config, marker);

        let (passed, _, stderr) = check(&file);
        assert!(!passed, "{what}: `levee check` passed");
        assert!(
            reported(&stderr, &shown, line, key).is_some(),
            "{what}: `levee check` did not report {key} at line {line}:\n{stderr}"
        );

        let mut levee = setup.spawn(&config);
        let status = levee.wait_exit(Duration::from_secs(15));
        let stderr = levee.stderr();
        assert!(!status.success(), "{what}: `levee run` started:\n{stderr}");
        assert!(
            reported(&stderr, &shown, line, key).is_some(),
            "{what}: `levee run` did not report {key} at line {line}:\n{stderr}"
        );
    }
}

/// Regression: the summary was printed at the end of the last error's line.
#[test]
fn the_summary_has_its_own_line() {
    let setup = LeveeSetup::new();
    let file = setup.config_path();
    let shown = file.display().to_string();
    fs::write(
        &file,
        format!(
            "[[listener]]\naddress = \"127.0.0.1:{}\"\nbacklogg = 1\n[[route]]\nrespond = \"x\"\n",
            setup.port
        ),
    )
    .expect("write config");
    let (_, _, stderr) = check(&file);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines,
        [
            format!(
                "{shown}:3:1: listener[0].backlogg: unknown key `backlogg`; did you mean `backlog`?"
            ),
            format!("levee: 1 error(s) in {shown}"),
        ],
        "{stderr:?}"
    );
}

/// Regression: an OS error was printed twice, the error and then its own
/// source (`listener ADDR: E: E`).
#[test]
fn an_os_error_is_said_once() {
    let setup = LeveeSetup::new();
    let shown = setup.config_path().display().to_string();
    let config = "[[listener]]\naddress = \"192.0.2.1:18080\"\n[[route]]\nrespond = \"x\"\n";
    let mut levee = setup.spawn(config);
    levee.wait_exit(Duration::from_secs(15));
    let stderr = levee.stderr();
    assert_eq!(stderr.matches("(os error").count(), 1, "{stderr}");
    assert!(
        stderr.ends_with(&format!("\nlevee: 1 error(s) in {shown}\n")),
        "{stderr:?}"
    );
}

/// A name that does not resolve is a warning, with its place; levee starts
/// (tests/dns.rs shows it keeps resolving the name). A local DNS server
/// that knows no such name answers at once, where the system resolver
/// might wait on an unreachable one.
#[test]
fn a_server_name_that_does_not_resolve_is_a_warning() {
    let dns = Dnsmasq::start(&[("known.levee.test", "127.0.0.1")]);
    let setup = LeveeSetup::new();
    let config = format!(
        "[resolver]\nservers = [\"{}\"]\n[[listener]]\naddress = \"127.0.0.1:{}\"\n\
         [[route]]\nproxy = \"app\"\n\
         [upstream.app]\nservers = [\"127.0.0.1:9\", \"levee-check.invalid:80\"]\n",
        dns.addr(),
        setup.port
    );
    let file = setup.config_path();
    fs::write(&file, &config).expect("write config");
    let shown = file.display().to_string();
    let (passed, stdout, stderr) = check(&file);
    assert!(passed, "{stderr}");
    assert!(
        stdout.contains(&format!("configuration file {shown} is ok, with 1 warning")),
        "{stdout}"
    );
    let line = line_of(&config, "levee-check.invalid");
    let warning = stderr
        .lines()
        .find_map(|l| l.strip_prefix("warning: "))
        .unwrap_or_else(|| panic!("no warning:\n{stderr}"));
    assert!(
        reported(warning, &shown, line, "upstream.app.servers[1]").is_some(),
        "{warning}"
    );
    // And `run` starts with it; the literal server serves meanwhile.
    // The warning is logged while the site is built, before the port
    // listens, but the test reads stderr on a thread that may lag behind.
    let levee = setup.start(&config);
    assert!(
        levee.wait_stderr("levee-check.invalid", Duration::from_secs(10)),
        "not logged:\n{}",
        levee.stderr()
    );
}

/// A reload is held to the same files: a static root that is gone keeps
/// the running config (it used to be taken, and every request got 404).
#[test]
fn a_reload_to_a_missing_static_root_is_refused() {
    let setup = LeveeSetup::new();
    let root = setup.dir.join("site");
    fs::create_dir_all(&root).expect("root");
    fs::write(root.join("index.html"), "old root\n").expect("index");
    let config = |root: &Path| {
        format!(
            "[[listener]]\naddress = \"127.0.0.1:{}\"\n[[route]]\nstatic = \"{}\"\n",
            setup.port,
            root.display()
        )
    };
    let good = config(&root);
    let bad = config(&setup.dir.join("gone"));
    let file = setup.config_path();
    let shown = file.display().to_string();
    let line = line_of(&bad, "static");
    let levee = setup.start(&good);
    assert_eq!(curl_ok(&[&levee.url("/")]), "old root\n");

    levee.write_config(&bad);
    let (passed, _, stderr) = check(&file);
    assert!(!passed, "`levee check` passed a missing static root");
    assert!(
        reported(&stderr, &shown, line, "route[0].static").is_some(),
        "{stderr}"
    );
    levee.reload();
    let said = poll(Duration::from_secs(10), || {
        reported(&levee.stderr(), &shown, line, "route[0].static").map(|_| ())
    });
    assert!(
        said.is_some(),
        "the reload did not report route[0].static:\n{}",
        levee.stderr()
    );
    assert!(levee.wait_stderr("reload refused", Duration::from_secs(5)));
    assert_eq!(curl_ok(&[&levee.url("/")]), "old root\n");
}

/// Regression: a password written into a URL was either taken (the mail
/// auth service's, the ACME directory's, the on-demand `ask`: then shown
/// by `levee config dump` and in every log line naming the peer) or
/// refused with the URL, password and all, repeated in the error.
#[test]
fn a_url_with_credentials_is_refused_without_repeating_them() {
    let dir = TempDir::new("check-userinfo");
    let port = free_port();
    let secret = "hunter2secret";
    let listener = format!("[[listener]]\naddress = \"127.0.0.1:{port}\"\n");
    let auto = format!(
        "[[listener]]\naddress = \"127.0.0.1:{port}\"\ntls = \"auto\"\n\
         [[route]]\nhost = \"a.example\"\nrespond = \"x\"\n"
    );
    let storage = dir.join("acme").display().to_string();
    let cases = [
        (
            "fleet.redis",
            format!(
                "{listener}[[route]]\nrespond = \"x\"\n[fleet]\nname = \"t\"\n\
                 redis = \"redis://:{secret}@127.0.0.1:6379\"\n"
            ),
        ),
        (
            "listener[0].mail.auth_http",
            format!(
                "{listener}protocol = \"imap\"\n[listener.mail]\n\
                 auth_http = \"http://u:{secret}@127.0.0.1:9/auth\"\n"
            ),
        ),
        (
            "acme.directory",
            format!(
                "{auto}[acme]\nstorage = \"{storage}\"\n\
                 directory = \"https://u:{secret}@127.0.0.1:14000/dir\"\n"
            ),
        ),
        (
            "acme.on_demand.ask",
            format!(
                "{auto}[acme]\nstorage = \"{storage}\"\n[acme.on_demand]\n\
                 ask = \"http://u:{secret}@127.0.0.1:9/ask\"\n"
            ),
        ),
        (
            "mirrors.dl.mirror[0].http",
            format!(
                "{listener}[[route]]\nmirrors = \"dl\"\n[mirrors.dl]\nroot = \"{root}\"\n\
                 state_dir = \"{root}/state\"\n[[mirrors.dl.mirror]]\nname = \"a\"\n\
                 http = \"http://u:{secret}@127.0.0.1:1/\"\n",
                root = dir.path().display()
            ),
        ),
    ];
    for (key, config) in cases {
        let setup = LeveeSetup::new();
        let file = setup.config_path();
        fs::write(&file, &config).expect("write config");
        let (passed, stdout, stderr) = check(&file);
        assert!(!passed, "{key}: `levee check` passed");
        let line = line_of(&config, secret);
        assert!(
            reported(&stderr, &file.display().to_string(), line, key).is_some(),
            "{key}: not reported at line {line}:\n{stderr}"
        );
        assert!(
            !stderr.contains(secret) && !stdout.contains(secret),
            "{key}: the password is repeated:\n{stderr}"
        );
    }
}
