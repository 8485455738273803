//! Upstreams against several real nginx servers: failover under load,
//! health checks and slow start, draining, no usable server, retries,
//! backups, affinity, and server state across reloads.

mod support;

use std::thread;
use std::time::{Duration, Instant};

use support::*;

/// [`upstream_config`] with nothing added to the route.
fn config(
    setup: &LeveeSetup,
    admin: u16,
    servers: &[String],
    upstream: &str,
    tail: &str,
) -> String {
    upstream_config(setup, admin, servers, "", upstream, tail)
}

/// Kill one of three servers under steady load: no request fails, the dead
/// server is down within one fall threshold of checks and gets no traffic
/// after; started again, it comes back through slow start.
#[test]
fn failover_under_load_and_return_through_slow_start() {
    let (a, b, c) = (
        Nginx::start_default(),
        Nginx::start_default(),
        Nginx::start_default(),
    );
    let (b_port, b_addr) = (b.port(), b.addr());
    let setup = LeveeSetup::new();
    let admin = free_port();
    let cfg = config(
        &setup,
        admin,
        &[quoted(&a), quoted(&b), quoted(&c)],
        "slow_start = \"3s\"\nfail_timeout = \"1s\"\nmax_ejection = \"1s\"",
        "[upstream.app.health_check]\ninterval = \"300ms\"\ntimeout = \"200ms\"\nfall = 2\nrise = 2\njitter = 0\n",
    );
    let levee = setup.start(&cfg);
    let load = Load::hello(levee.port, 4);
    let served = poll(Duration::from_secs(10), || {
        (requests_to(admin, &b_addr) > 0.0).then_some(())
    });
    assert!(served.is_some(), "b got no traffic before");

    drop(b);
    let killed = Instant::now();
    // Fall threshold: 2 checks of 300 ms interval + 200 ms timeout.
    let fall_threshold = Duration::from_millis(2 * 500);
    let down = poll(Duration::from_secs(5), || {
        (state(admin, &b_addr) == "down").then(Instant::now)
    })
    .expect("the killed server is never marked down");
    let took = down - killed;
    assert!(
        took <= fall_threshold + Duration::from_millis(700),
        "marked down after {took:?}"
    );
    let after_down = requests_to(admin, &b_addr);
    thread::sleep(Duration::from_millis(800));
    assert_eq!(
        requests_to(admin, &b_addr),
        after_down,
        "the dead server still gets requests"
    );

    let b = Nginx::start_on(b_port, DEFAULT_APP);
    let seen_slow_start = poll(Duration::from_secs(5), || {
        let s = server_json(admin, "app", &b_addr);
        (s["state"] == "slow_start").then(|| s["effective_weight"].as_f64().unwrap_or(1.0))
    })
    .expect("the server never came back through slow start");
    assert!(
        seen_slow_start < 1.0,
        "weight {seen_slow_start} during slow start"
    );
    let up = poll(Duration::from_secs(6), || {
        (state(admin, &b_addr) == "up").then_some(())
    });
    assert!(up.is_some(), "slow start never ended");
    assert!(
        !b.access_log().is_empty(),
        "the returned server got no traffic"
    );

    let (ok, errors) = load.finish();
    assert!(
        errors.is_empty(),
        "{} failed requests: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert!(ok > 200, "only {ok} requests in the run");
}

/// Draining a server: in-flight requests finish, no new ones arrive.
#[test]
fn drain_lets_in_flight_finish_and_sends_nothing_new() {
    let (a, b) = (Nginx::start_default(), Nginx::start_default());
    let big = random_bytes(60 * 1024, 9);
    a.put_file("slow/big.bin", &big);
    b.put_file("slow/big.bin", &big);
    let setup = LeveeSetup::new();
    let admin = free_port();
    let cfg = config(&setup, admin, &[quoted(&a), quoted(&b)], "", "");
    let config_path = setup.config_path();
    let levee = setup.start(&cfg);
    let url = levee.url("/slow/big.bin");
    let download = thread::spawn(move || curl(&["-o", "-", &url]));
    let busy = poll(Duration::from_secs(5), || {
        [a.addr(), b.addr()]
            .into_iter()
            .find(|addr| server_json(admin, "app", addr)["active"] == 1)
    })
    .expect("the download is in flight nowhere");
    let (busy_nginx, other) = if busy == a.addr() { (&a, &b) } else { (&b, &a) };

    let out = levee_cmd(&[
        "ctl",
        "-c",
        &config_path.display().to_string(),
        "drain",
        "app",
        &busy,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("draining"));

    for _ in 0..20 {
        let r = get(levee.port, "/");
        assert_eq!(r.status, 200);
        assert_eq!(
            served_by(&r),
            other.port().to_string(),
            "a drained server got a new request"
        );
    }
    let done = download.join().expect("download thread");
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert_eq!(done.stdout, big, "the in-flight download did not complete");
    let busy_entries = busy_nginx.wait_entries("/", 1);
    assert_eq!(
        busy_entries.len(),
        1,
        "the drained server got more than its in-flight request: {busy_entries:?}"
    );
    assert_eq!(server_json(admin, "app", &busy)["active"], 0);
    // Its idle pooled connections are closed within a sweep.
    let idle = format!("levee_upstream_idle_connections{{upstream=\"app\",server=\"{busy}\"}}");
    assert!(
        poll(Duration::from_secs(3), || (metric(admin, &idle)
            == Some(0.0))
        .then_some(()))
        .is_some()
    );
}

/// No usable server: an immediate 503 with Retry-After.
#[test]
fn no_usable_server_is_an_immediate_503() {
    let (a, b) = (Nginx::start_default(), Nginx::start_default());
    let setup = LeveeSetup::new();
    let admin = free_port();
    let cfg = config(&setup, admin, &[quoted(&a), quoted(&b)], "", "");
    let levee = setup.start(&cfg);
    assert_eq!(get(levee.port, "/").status, 200);
    for n in [&a, &b] {
        let (status, body) = admin_request(
            admin,
            "POST",
            &format!("/upstreams/app/servers/{}/disable", n.addr()),
            "",
        );
        assert_eq!(status, 200, "{body}");
    }
    let started = Instant::now();
    let r = get(levee.port, "/");
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(started.elapsed() < Duration::from_millis(500));
    let (status, _) = admin_request(
        admin,
        "POST",
        &format!("/upstreams/app/servers/{}/enable", b.addr()),
        "",
    );
    assert_eq!(status, 200);
    assert_eq!(served_by(&get(levee.port, "/")), b.port().to_string());
}

/// Servers that refuse connections: at most half the group is ejected
/// (`max_ejected_percent`), so the other one is still tried and the client
/// gets a 502 at once, not a 503 for a group levee gave up on.
#[test]
fn refused_servers_are_ejected_up_to_half_the_group_then_502() {
    let setup = LeveeSetup::new();
    let admin = free_port();
    let dead = [
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    ];
    let servers: Vec<String> = dead.iter().map(|d| format!("\"{d}\"")).collect();
    let cfg = config(
        &setup,
        admin,
        &servers,
        "max_fails = 1\nfail_timeout = \"30s\"",
        "",
    );
    let levee = setup.start(&cfg);
    // Both are tried, both refuse: 502.
    assert_eq!(get(levee.port, "/").status, 502);
    for _ in 0..5 {
        let started = Instant::now();
        assert_eq!(get(levee.port, "/").status, 502);
        assert!(started.elapsed() < Duration::from_millis(500));
    }
    let mut states: Vec<String> = dead.iter().map(|d| state(admin, d)).collect();
    states.sort();
    assert_eq!(states, ["ejected", "up"]);
    for d in &dead {
        let errors = metric(
            admin,
            &format!(
                "levee_upstream_errors_total{{upstream=\"app\",server=\"{d}\",kind=\"connect\"}}"
            ),
        );
        assert!(errors >= Some(1.0), "{d}: {errors:?}");
    }
}

/// 502 from one server: GET moves to another server, POST does not.
#[test]
fn idempotent_requests_retry_on_502_others_do_not() {
    let flaky = Nginx::start(
        "location /flaky { return 502; }\nlocation / { return 200 \"hello from $server_port\\n\"; }",
    );
    let good = Nginx::start("location / { return 200 \"hello from $server_port\\n\"; }");
    let setup = LeveeSetup::new();
    let admin = free_port();
    let cfg = config(
        &setup,
        admin,
        &[quoted(&flaky), quoted(&good)],
        "max_fails = 0",
        "",
    );
    let levee = setup.start(&cfg);
    for _ in 0..10 {
        let r = get(levee.port, "/flaky");
        assert_eq!(r.status, 200);
        assert_eq!(served_by(&r), good.port().to_string());
    }
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let mut c = RawConn::connect(levee.port);
        c.send(b"POST /flaky HTTP/1.1\r\nHost: up.test\r\nContent-Length: 1\r\n\r\nx");
        statuses.push(c.read_response("POST").status);
    }
    assert!(statuses.contains(&502), "POST was retried: {statuses:?}");
    assert!(statuses.contains(&200), "{statuses:?}");
}

/// Backup servers take requests only when every primary is unusable.
#[test]
fn backups_only_when_primaries_are_down() {
    let (primary, backup) = (Nginx::start_default(), Nginx::start_default());
    let setup = LeveeSetup::new();
    let admin = free_port();
    let servers = [
        quoted(&primary),
        format!("{{ address = \"{}\", backup = true }}", backup.addr()),
    ];
    let cfg = config(&setup, admin, &servers, "", "");
    let levee = setup.start(&cfg);
    for _ in 0..10 {
        assert_eq!(served_by(&get(levee.port, "/")), primary.port().to_string());
    }
    drop(primary);
    for _ in 0..10 {
        let r = get(levee.port, "/");
        assert_eq!(r.status, 200);
        assert_eq!(served_by(&r), backup.port().to_string());
    }
}

/// Operator state survives a reload until the config changes that server.
#[test]
fn drain_survives_reload_until_the_server_changes() {
    let (a, b) = (Nginx::start_default(), Nginx::start_default());
    let setup = LeveeSetup::new();
    let admin = free_port();
    let cfg = config(&setup, admin, &[quoted(&a), quoted(&b)], "", "");
    let levee = setup.start(&cfg);
    let (status, _) = admin_request(
        admin,
        "POST",
        &format!("/upstreams/app/servers/{}/drain", a.addr()),
        "",
    );
    assert_eq!(status, 200);
    levee.reload();
    assert!(levee.wait_stderr("reloaded", Duration::from_secs(5)));
    assert_eq!(state(admin, &a.addr()), "draining");
    for _ in 0..5 {
        assert_eq!(served_by(&get(levee.port, "/")), b.port().to_string());
    }
    // A new weight in the config is a change to the server: its state starts afresh.
    let changed = cfg.replace(
        &quoted(&a),
        &format!("{{ address = \"{}\", weight = 2 }}", a.addr()),
    );
    levee.write_config(&changed);
    levee.reload();
    let fresh = poll(Duration::from_secs(5), || {
        (state(admin, &a.addr()) == "up").then_some(())
    });
    assert!(fresh.is_some(), "a changed server kept its old state");
}

/// `levee ctl`: the table, weights, and metrics with every expected series.
#[test]
fn ctl_and_metrics() {
    let (a, b) = (Nginx::start_default(), Nginx::start_default());
    let setup = LeveeSetup::new();
    let admin = free_port();
    // One worker: each worker balances on its own, so exact shares are per worker.
    let cfg = config(&setup, admin, &[quoted(&a), quoted(&b)], "", "")
        .replace("workers = 2", "workers = 1");
    let path = setup.config_path().display().to_string();
    let levee = setup.start(&cfg);
    for _ in 0..6 {
        assert_eq!(get(levee.port, "/").status, 200);
    }
    let ctl = |args: &[&str]| {
        let mut all = vec!["ctl", "-c", &path];
        all.extend_from_slice(args);
        let out = levee_cmd(&all);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, table, err) = ctl(&["upstreams"]);
    assert!(ok, "{err}");
    assert!(table.starts_with("UPSTREAM"), "{table}");
    assert!(
        table.contains(&a.addr()) && table.contains(&b.addr()),
        "{table}"
    );
    let (ok, _, err) = ctl(&["weight", "app", &a.addr(), "3"]);
    assert!(ok, "{err}");
    assert_eq!(
        server_json(admin, "app", &a.addr())["effective_weight"],
        3.0
    );
    let mut to_a = 0;
    for _ in 0..40 {
        if served_by(&get(levee.port, "/")) == a.port().to_string() {
            to_a += 1;
        }
    }
    // 30 of 40 at 3:1; the scores carried over from before the change shift it by at most one or two.
    assert!((28..=32).contains(&to_a), "{to_a} of 40 at weight 3:1");
    let (ok, _, err) = ctl(&["weight", "app", &a.addr(), "default"]);
    assert!(ok, "{err}");
    let (ok, _, err) = ctl(&["drain", "app", "10.9.9.9:1"]);
    assert!(!ok && err.contains("no server"), "{err}");

    let (ok, text, err) = ctl(&["metrics"]);
    assert!(ok, "{err}");
    let server = format!("upstream=\"app\",server=\"{}\"", a.addr());
    for series in [
        format!("levee_upstream_requests_total{{{server}}}"),
        format!("levee_upstream_responses_total{{{server},class=\"2xx\"}}"),
        format!("levee_upstream_errors_total{{{server},kind=\"connect\"}} 0"),
        format!("levee_upstream_response_seconds_bucket{{{server},le=\"+Inf\"}}"),
        format!("levee_upstream_response_seconds_count{{{server}}}"),
        format!("levee_upstream_server_up{{{server}}} 1"),
        format!("levee_upstream_server_state{{{server},state=\"up\"}} 1"),
        format!("levee_upstream_active_requests{{{server}}} 0"),
        format!("levee_upstream_idle_connections{{{server}}}"),
        format!(
            "levee_listener_connections_total{{listener=\"127.0.0.1:{}\"}}",
            levee.port
        ),
        format!(
            "levee_listener_requests_total{{listener=\"127.0.0.1:{}\"}}",
            levee.port
        ),
    ] {
        assert!(text.contains(&series), "no {series} in:\n{text}");
    }
    let requests = metric(
        admin,
        &format!(
            "levee_listener_requests_total{{listener=\"127.0.0.1:{}\"}}",
            levee.port
        ),
    );
    assert!(requests >= Some(14.0), "{requests:?}");
    let two_xx = metric(
        admin,
        &format!("levee_upstream_responses_total{{{server},class=\"2xx\"}}"),
    );
    assert!(two_xx >= Some(3.0), "{two_xx:?}");
}

/// Hashing on the URI pins each path to one server; sticky cookies pin clients.
#[test]
fn hash_and_sticky_affinity() {
    let servers = [
        Nginx::start_default(),
        Nginx::start_default(),
        Nginx::start_default(),
    ];
    let list: Vec<String> = servers.iter().map(quoted).collect();
    let setup = LeveeSetup::new();
    let admin = free_port();
    let cfg = config(
        &setup,
        admin,
        &list,
        "balance = \"hash\"\nhash_key = \"uri\"",
        "",
    );
    let levee = setup.start(&cfg);
    let mut owners = std::collections::HashSet::new();
    for k in 0..12 {
        let path = format!("/object/{k}");
        let first = served_by(&get(levee.port, &path));
        for _ in 0..3 {
            assert_eq!(served_by(&get(levee.port, &path)), first, "{path} moved");
        }
        owners.insert(first);
    }
    assert!(owners.len() > 1, "every key on one server");
    drop(levee);

    let setup = LeveeSetup::new();
    let admin = free_port();
    let cfg = config(&setup, admin, &list, "balance = \"sticky\"", "");
    let levee = setup.start(&cfg);
    let first = get(levee.port, "/");
    let cookie = first
        .header("set-cookie")
        .expect("a sticky cookie")
        .split(';')
        .next()
        .expect("name=value")
        .to_string();
    assert!(cookie.starts_with("levee_server="), "{cookie}");
    for _ in 0..6 {
        let mut c = RawConn::connect(levee.port);
        c.send(
            format!("GET / HTTP/1.1\r\nHost: up.test\r\nCookie: a=b; {cookie}\r\n\r\n").as_bytes(),
        );
        let r = c.read_response("GET");
        assert_eq!(served_by(&r), served_by(&first));
        assert_eq!(
            r.header("set-cookie"),
            None,
            "an already pinned client is not re-pinned"
        );
    }
}

/// A DNS name becomes one server per record.
#[test]
fn a_dns_name_becomes_a_server_per_record() {
    let n = Nginx::start_default();
    let setup = LeveeSetup::new();
    let admin = free_port();
    let name = format!("\"localhost:{}\"", n.port());
    let cfg = config(&setup, admin, &[name], "resolve_interval = \"1s\"", "");
    let levee = setup.start(&cfg);
    let r = get(levee.port, "/");
    assert_eq!(r.status, 200);
    let (_, body) = admin_request(admin, "GET", "/upstreams/app", "");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let servers = v["servers"].as_array().expect("servers");
    let expected: Vec<String> = std::net::ToSocketAddrs::to_socket_addrs(&("localhost", n.port()))
        .expect("localhost resolves")
        .map(|a| a.to_string())
        .collect();
    assert_eq!(servers.len(), expected.len(), "{body}");
    for s in servers {
        assert_eq!(s["configured"], format!("localhost:{}", n.port()));
        assert!(expected.contains(&s["address"].as_str().unwrap_or_default().to_string()));
    }
}
