//! Config rollout across a fleet (`levee ctl fleet push`, docs/fleet.md):
//! three members running one and the same file (fleet/twins.rs: each in a
//! UTS namespace named after it, on ports the OS picks) and a real
//! redis-server. A good config reaches every member; one refused by the
//! members' own checks leaves each on its config, serving; a canary that
//! refuses stops the rollout; a member that restarts without Redis comes up
//! on the last config it applied.

#[path = "fleet/common.rs"]
mod common;
mod support;
#[path = "fleet/twins.rs"]
mod twins;

use std::fs;
use std::process::{Command, Output};
use std::time::Duration;

use support::{Redis, TempDir, curl_ok, poll};
use twins::Twin;

/// The fleet's shared config, answering `body` on `/`; `extra` appended.
fn config(redis: &Redis, body: &str, extra: &str) -> String {
    format!(
        r#"[log]
access = "off"
level = "info"

[[listener]]
address = "127.0.0.1:0"

[[route]]
respond = "{body}"

[admin]
address = "127.0.0.1:0"

[fleet]
name = "t"
redis = "{url}"
heartbeat = "200ms"
heartbeat_ttl = "1s"
timeout = "500ms"
{extra}"#,
        url = redis.url()
    )
}

/// Three members on `text`, each applying fleet limits and seeing the
/// other two.
fn start(text: &str) -> Vec<Twin> {
    let twins: Vec<Twin> = ["m0", "m1", "m2"]
        .iter()
        .map(|n| Twin::start(n, text))
        .collect();
    for t in &twins {
        let ready = poll(Duration::from_secs(20), || {
            (t.metric("levee_fleet_redis_up") == 1.0
                && t.metric("levee_fleet_members{state=\"fresh\"}") == 3.0)
                .then_some(())
        });
        assert!(
            ready.is_some(),
            "{} never saw the fleet:\n{}",
            t.name,
            t.stderr()
        );
    }
    twins
}

/// `levee ctl fleet push FILE ARGS…` through `via`, run in `cwd`.
fn push(via: &Twin, cwd: &TempDir, file: &str, args: &[&str]) -> (Output, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_levee"))
        .args(["ctl", "--admin", &via.admin_addr(), "fleet", "push", file])
        .args(args)
        .current_dir(cwd.path())
        .output()
        .expect("run levee ctl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

/// The table row of `name`: its words.
fn row<'a>(table: &'a str, name: &str) -> Vec<&'a str> {
    table
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no row for {name}:\n{table}"))
        .split_whitespace()
        .collect()
}

fn body(t: &Twin, path: &str) -> String {
    curl_ok(&[&format!("http://127.0.0.1:{}{path}", t.port)])
}

#[test]
fn a_good_config_reaches_every_member_and_a_refused_one_changes_none() {
    let redis = Redis::start();
    let v1 = config(&redis, "v1", "");
    let twins = start(&v1);
    for t in &twins {
        assert_eq!(body(t, "/"), "v1");
    }
    let here = TempDir::new("pusher");

    // A good config: every member applies it, serves it, and saves it. It
    // changes [fleet] too, so each member rejoins the fleet as it applies
    // it, the one answering the push included, and still reports.
    let v2 = config(
        &redis,
        "v2",
        "\n[[route]]\npath = \"/new\"\nrespond = \"new\"\n",
    )
    .replace("timeout = \"500ms\"", "timeout = \"400ms\"");
    fs::write(here.join("v2.toml"), &v2).expect("write v2");
    let (out, table) = push(&twins[1], &here, "v2.toml", &[]);
    assert!(out.status.success(), "{table}");
    for t in &twins {
        assert_eq!(row(&table, &t.name)[1], "applied", "{table}");
        assert_eq!(body(t, "/"), "v2");
        assert_eq!(body(t, "/new"), "new");
        assert_eq!(fs::read_to_string(t.config_path()).expect("saved"), v2);
    }
    assert!(
        table.ends_with("3 of 3 member(s) applied the config\n"),
        "{table}"
    );
    let hash = row(&table, "m0")[2].to_owned();
    let listed = poll(Duration::from_secs(10), || {
        let out = support::levee_cmd(&["ctl", "--admin", &twins[0].admin_addr(), "fleet"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (text.matches(&hash).count() == 3 && !text.contains("differ")).then_some(())
    });
    assert!(listed.is_some(), "the members do not all report {hash}");

    // Refused here: the file does not parse. Nothing is pushed.
    fs::write(here.join("broken.toml"), "[[route]\n").expect("write");
    let (out, text) = push(&twins[0], &here, "broken.toml", &[]);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("broken.toml:1:"), "{text}");
    assert!(!text.contains("applied"), "{text}");

    // Passed here, refused by the members: the static root is relative,
    // and only the pusher's directory has it.
    fs::create_dir(here.join("www")).expect("mkdir");
    let v3 = format!("{v2}\n[[route]]\npath = \"/files/\"\nstatic = \"www\"\n");
    fs::write(here.join("v3.toml"), &v3).expect("write v3");
    let line = v3
        .lines()
        .position(|l| l == "static = \"www\"")
        .expect("line")
        + 1;
    let (out, table) = push(&twins[2], &here, "v3.toml", &[]);
    assert_eq!(out.status.code(), Some(1), "{table}");
    for t in &twins {
        assert_eq!(row(&table, &t.name)[1], "refused", "{table}");
        // The member's own file, line and column, key and reason.
        let error = format!(
            "  {}:{line}:10: route[2].static: `www` is not a directory",
            t.config_path().display()
        );
        assert!(table.contains(&error), "{error}\n{table}");
        // Still serving the config it had, which is still its file.
        assert_eq!(body(t, "/"), "v2");
        assert_eq!(fs::read_to_string(t.config_path()).expect("kept"), v2);
        assert!(
            t.stderr().contains("pushed config refused"),
            "{}",
            t.stderr()
        );
    }
    assert!(
        table.ends_with("0 of 3 member(s) applied the config\n"),
        "{table}"
    );
    // No temp file is left beside the config.
    for t in &twins {
        let left: Vec<_> = fs::read_dir(t.dir.path())
            .expect("dir")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

#[test]
fn a_canary_goes_first_and_a_refusing_one_stops_the_rollout() {
    let redis = Redis::start();
    let twins = start(&config(&redis, "v1", ""));
    let here = TempDir::new("pusher");

    let v2 = config(&redis, "v2", "");
    fs::write(here.join("v2.toml"), &v2).expect("write");
    let (out, table) = push(&twins[2], &here, "v2.toml", &["--first", "1"]);
    assert!(out.status.success(), "{table}");
    assert!(table.contains("canaries healthy: m0"), "{table}");
    for t in &twins {
        assert_eq!(row(&table, &t.name)[1], "applied", "{table}");
        assert_eq!(body(t, "/"), "v2");
    }

    // A config that names one member: the canary (m0) refuses it, so m1,
    // which would take it, and m2 are not pushed to.
    let named = v2.replace("[fleet]\n", "[fleet]\ninstance = \"m1\"\n");
    fs::write(here.join("named.toml"), &named).expect("write");
    let (out, table) = push(&twins[2], &here, "named.toml", &["--first", "1"]);
    assert_eq!(out.status.code(), Some(1), "{table}");
    assert_eq!(row(&table, "m0")[1], "refused", "{table}");
    let line = named
        .lines()
        .position(|l| l == "instance = \"m1\"")
        .expect("line")
        + 1;
    let error = format!(":{line}:12: fleet.instance: a pushed config may not name the member");
    assert!(table.contains(&error), "{error}\n{table}");
    assert_eq!(row(&table, "m1")[1..3], ["not", "pushed"], "{table}");
    assert_eq!(row(&table, "m2")[1..3], ["not", "pushed"], "{table}");
    assert!(
        table.contains("a canary did not apply the config: not pushed to m1, m2"),
        "{table}"
    );
    for t in &twins {
        assert_eq!(body(t, "/"), "v2");
        assert_eq!(fs::read_to_string(t.config_path()).expect("kept"), v2);
    }
}

/// The file on disk is the truth: a member that restarts while Redis is
/// away starts on the last config it applied.
#[test]
fn a_member_restarting_without_redis_runs_its_last_applied_config() {
    let mut redis = Redis::start();
    let mut twins = start(&config(&redis, "v1", ""));
    let here = TempDir::new("pusher");
    let v2 = config(&redis, "v2", "");
    fs::write(here.join("v2.toml"), &v2).expect("write");
    let (out, table) = push(&twins[0], &here, "v2.toml", &[]);
    assert!(out.status.success(), "{table}");
    redis.kill();
    let m1 = &mut twins[1];
    m1.stop();
    m1.spawn();
    assert_eq!(body(m1, "/"), "v2");
    assert!(
        m1.stderr().contains("cannot reach Redis"),
        "{}",
        m1.stderr()
    );
}

/// A push is applied as a reload, all or nothing. The reload joined a
/// changed `[fleet]` before building the site, and a site that then failed
/// to build left the member in the new fleet though the reload was
/// refused; now it rejoins the fleet it had.
#[test]
fn a_refused_reload_leaves_the_member_in_the_fleet_it_had() {
    let redis = Redis::start();
    let t = Twin::start("m0", &config(&redis, "v1", ""));
    let listed = |fleet: &str| {
        redis
            .cli(&["hkeys", &format!("{{{fleet}}}:members")])
            .contains("m0")
    };
    assert!(poll(Duration::from_secs(10), || listed("t").then_some(())).is_some());
    // Another fleet's name, and a mirror set whose GeoIP database does not
    // load: the site cannot be built (no check before it reads the file).
    let root = t.dir.join("root");
    fs::create_dir(&root).expect("mkdir");
    fs::write(t.dir.join("bad.mmdb"), "garbage").expect("write");
    let broken = config(&redis, "v2", "").replace("name = \"t\"", "name = \"t2\"")
        + &format!(
            "\n[[route]]\npath = \"/dl/\"\nmirrors = \"dl\"\n[mirrors.dl]\nroot = \"{}\"\n\
             state_dir = \"{}\"\ngeoip = \"{}\"\n[[mirrors.dl.mirror]]\nname = \"a\"\n\
             http = \"http://127.0.0.1:1\"\n",
            root.display(),
            t.dir.join("state").display(),
            t.dir.join("bad.mmdb").display(),
        );
    fs::write(t.config_path(), broken).expect("write");
    t.reload();
    let refused = poll(Duration::from_secs(10), || {
        t.stderr().contains("reload refused").then_some(())
    });
    assert!(refused.is_some(), "{}", t.stderr());
    assert!(t.stderr().contains("GeoIP database"), "{}", t.stderr());
    assert_eq!(body(&t, "/"), "v1");
    // Still a member of t, never (or no longer) of t2.
    let settled = poll(Duration::from_secs(10), || {
        (listed("t") && !listed("t2")).then_some(())
    });
    assert!(
        settled.is_some(),
        "t: {}, t2: {}",
        redis.cli(&["hkeys", "{t}:members"]),
        redis.cli(&["hkeys", "{t2}:members"])
    );
    let up = poll(Duration::from_secs(10), || {
        (t.metric("levee_fleet_redis_up") == 1.0).then_some(())
    });
    assert!(up.is_some(), "{}", t.stderr());
}

/// Only the fleet's own members speak on the bus: a config push or a user
/// move published by another client of the same Redis, without the
/// fleet's signature (keyed by levee's Redis password), is ignored.
#[test]
fn messages_without_the_fleets_signature_are_ignored() {
    let redis = Redis::start_with(&["--requirepass", "fleet-secret"]);
    let dir = TempDir::new("creds");
    fs::write(dir.join("auth"), "fleet-secret\n").expect("write");
    let creds = format!("credentials_file = \"{}\"\n", dir.join("auth").display());
    let t = Twin::start("m0", &config(&redis, "v1", &creds));
    let up = poll(Duration::from_secs(15), || {
        (t.metric("levee_fleet_redis_up") == 1.0).then_some(())
    });
    assert!(up.is_some(), "{}", t.stderr());
    let push = serde_json::json!({
        "type": "config_push", "from": "intruder", "sent_ms": 1, "id": "1-x",
        "hash": "h", "config": config(&redis, "forged", &creds),
    })
    .to_string();
    let close = r#"{"type":"close_user","from":"intruder","sent_ms":1,"user":"alice"}"#;
    let forged = "ab".repeat(32);
    let payloads = [
        push.clone(),
        format!("{forged} {push}"),
        format!("{forged} {close}"),
    ];
    for (n, payload) in payloads.iter().enumerate() {
        let ignored = poll(Duration::from_secs(10), || {
            redis.cli(&[
                "-a",
                "fleet-secret",
                "--no-auth-warning",
                "publish",
                "{t}:bus",
                payload,
            ]);
            // Logged at the 1st, 2nd, 4th... ignored message.
            let logged = t
                .stderr()
                .matches("a message without the fleet's signature was ignored")
                .count();
            (logged > n.min(2)).then_some(())
        });
        assert!(ignored.is_some(), "{}", t.stderr());
    }
    assert_eq!(body(&t, "/"), "v1");
    assert!(
        fs::read_to_string(t.config_path())
            .expect("kept")
            .contains("\"v1\"")
    );
    assert!(
        !t.stderr().contains("closing a moved user"),
        "{}",
        t.stderr()
    );
}
