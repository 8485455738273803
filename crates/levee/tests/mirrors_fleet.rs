//! The download redirector's mirror list shared through a fleet, end to
//! end: three members (fleet/common.rs) on a real redis-server, each with
//! a `mirrors` route over the same tree, a real nginx as mirror `de1`
//! (support/mirrors.rs). A runtime edit on any member reaches the others
//! within a second and changes where they redirect; an edit made while
//! Redis is away applies at once and reaches the others when it is back;
//! a member that starts, and a Redis restarted empty, catch up.

#[path = "fleet/common.rs"]
mod common;
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use common::Member;
use support::{
    MirrorSite, Redis, TempDir, admin_request, find_mirror, get_from, local_tree, mirror, poll,
};

/// The spec's bound for an edit to reach every member.
const WITHIN: Duration = Duration::from_secs(1);
/// A 3 MiB file every mirror has: redirected when a mirror is usable.
const FILE: &str = "/pub/releases/1.0/image.iso";

struct MirrorFleet {
    redis: Redis,
    base: TempDir,
    de1: MirrorSite,
    root: std::path::PathBuf,
    members: Vec<Member>,
}

impl MirrorFleet {
    fn start() -> MirrorFleet {
        let redis = Redis::start();
        let base = TempDir::new("mirrors-fleet");
        let files = support::tree_files();
        let root = local_tree(base.path(), &files);
        let de1 = mirror("de1", [127, 0, 0, 21], &files, &[], &[], false);
        let mut f = MirrorFleet {
            redis,
            base,
            de1,
            root,
            members: Vec::new(),
        };
        for n in 0..3 {
            let m = f.member(n);
            f.members.push(m);
        }
        for m in &f.members {
            support::wait_up(m.admin, &["de1"]);
        }
        f
    }

    /// Member `n`, with a state directory of its own.
    fn member(&self, n: usize) -> Member {
        // Generous: an answer on this loaded machine may take longer than
        // the default 20 ms.
        let fleet = format!(
            "name = \"t\"\nredis = \"{}\"\ntimeout = \"500ms\"",
            self.redis.url()
        );
        let state = self.base.join(&format!("state-{n}-{}", unique()));
        // Member's config has a rate-limited route (unused here).
        let tables = format!(
            "{}\n{}",
            common::promo("10/s", 10),
            tables(&self.root, &state, &self.de1)
        );
        let m = Member::start(n, &fleet, &tables);
        assert!(
            m.wait_redis_up(Duration::from_secs(15)),
            "{}",
            m.levee.stderr()
        );
        m
    }

    /// Where member `n` sends a download of [`FILE`]: 302 or 200.
    fn status(&self, n: usize) -> u16 {
        let m = &self.members[n];
        get_from(
            "127.0.0.1",
            &format!("http://{}:{}{FILE}", m.ip, m.port),
            &[],
        )
        .0
    }
}

fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn tables(root: &Path, state: &Path, de1: &MirrorSite) -> String {
    format!(
        r#"[[route]]
path = "/pub/"
mirrors = "dl"

[mirrors.dl]
root = "{root}"
state_dir = "{state}"
probe_interval = "1s"
probe_timeout = "5s"
probe_rise = 1

[[mirrors.dl.mirror]]
name = "de1"
http = "{base}"
"#,
        root = root.display(),
        state = state.display(),
        base = de1.base(),
    )
}

/// A change through member `admin`'s API, answered with `expect`: the
/// JSON answer.
fn change(admin: u16, (method, path): (&str, &str), body: &str, expect: u16) -> serde_json::Value {
    let (status, text) = admin_request(admin, method, path, body);
    assert_eq!(status, expect, "{method} {path}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

/// `levee ctl ARGS` against `m`, which must succeed: its output.
fn ctl(m: &Member, args: &[&str]) -> String {
    let admin = format!("127.0.0.1:{}", m.admin);
    let mut all = vec!["ctl", "--admin", &admin];
    all.extend_from_slice(args);
    let out = support::levee_cmd(&all);
    assert!(
        out.status.success(),
        "ctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until `seen` holds on every member in `members` (indexes into
/// `f.members`), for at most `within`; panics naming who did not.
fn everywhere(
    f: &MirrorFleet,
    members: &[usize],
    within: Duration,
    what: &str,
    seen: impl Fn(&Member) -> bool,
) {
    let start = Instant::now();
    let done = poll(within, || {
        members.iter().all(|&n| seen(&f.members[n])).then_some(())
    });
    let late: Vec<String> = members
        .iter()
        .filter(|&&n| !seen(&f.members[n]))
        .map(|n| format!("m{n}"))
        .collect();
    assert!(
        done.is_some(),
        "{what}: not on {late:?} after {:?}",
        start.elapsed()
    );
}

/// The issue: "the list comes from the config and from the control API
/// (add, edit, enable, disable), and is shared through Redis". Each edit
/// asked of one member is stored in Redis and applied by the others
/// within a second, and they redirect accordingly.
#[test]
fn an_edit_on_any_member_reaches_every_member_within_a_second() {
    let f = MirrorFleet::start();
    for n in 0..3 {
        assert_eq!(f.status(n), 302, "m{n} redirects to de1 to begin with");
        assert_eq!(
            find_mirror(f.members[n].admin, "de1").expect("de1")["source"],
            "config"
        );
    }

    // Added on m0.
    let v = change(
        f.members[0].admin,
        ("POST", "/mirrors/dl/mirrors"),
        r#"{"name": "jp1", "http": "http://127.0.0.1:9/pub", "country": "JP", "weight": 7}"#,
        201,
    );
    assert_eq!(v["fleet"], "sent to every member", "{v}");
    assert_eq!(v["source"], "api");
    everywhere(&f, &[1, 2], WITHIN, "jp1 added", |m| {
        find_mirror(m.admin, "jp1").is_some_and(|j| j["weight"] == 7 && j["source"] == "api")
    });
    let row = f.redis.cli(&["HGET", "{t}:mirrors:dl", "jp1"]);
    assert!(
        row.contains("\"v\":") && row.contains("127.0.0.1:9"),
        "{row}"
    );

    // Edited on m2.
    let v = change(
        f.members[2].admin,
        ("PUT", "/mirrors/dl/mirrors/jp1"),
        r#"{"http": "http://127.0.0.1:9/pub", "country": "JP", "weight": 9}"#,
        200,
    );
    assert_eq!(v["fleet"], "sent to every member", "{v}");
    everywhere(&f, &[0, 1], WITHIN, "jp1 edited", |m| {
        find_mirror(m.admin, "jp1").is_some_and(|j| j["weight"] == 9)
    });

    // The file's de1 disabled on m1: nobody redirects any more.
    let v = change(
        f.members[1].admin,
        ("POST", "/mirrors/dl/mirrors/de1/disable"),
        "{}",
        200,
    );
    assert_eq!(v["source"], "config+api");
    everywhere(&f, &[0, 2], WITHIN, "de1 disabled", |m| {
        find_mirror(m.admin, "de1").is_some_and(|d| d["state"] == "disabled")
    });
    for n in 0..3 {
        assert_eq!(
            f.status(n),
            200,
            "m{n} still redirects to a disabled mirror"
        );
    }
    // `levee ctl mirrors list` says where each entry comes from.
    let table = ctl(&f.members[2], &["mirrors", "list", "dl"]);
    let de1 = table
        .lines()
        .find(|l| l.contains(" de1 "))
        .unwrap_or_default();
    assert!(
        de1.contains("config+api") && de1.contains("disabled"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.contains(" jp1 ") && l.contains(" api ")),
        "{table}"
    );

    // Enabled on m2: everyone redirects again.
    change(
        f.members[2].admin,
        ("POST", "/mirrors/dl/mirrors/de1/enable"),
        "{}",
        200,
    );
    everywhere(&f, &[0, 1], WITHIN, "de1 enabled", |m| {
        find_mirror(m.admin, "de1").is_some_and(|d| d["enabled"] == true)
    });
    let back = poll(Duration::from_secs(10), || {
        (0..3).all(|n| f.status(n) == 302).then_some(())
    });
    assert!(back.is_some(), "a member did not redirect again");

    // Reset on m0: the added mirror is gone everywhere, and from Redis;
    // de1 is the file's again.
    ctl(&f.members[0], &["mirrors", "reset", "dl", "jp1"]);
    change(
        f.members[0].admin,
        ("DELETE", "/mirrors/dl/mirrors/de1"),
        "{}",
        200,
    );
    everywhere(&f, &[1, 2], WITHIN, "reset", |m| {
        find_mirror(m.admin, "jp1").is_none()
            && find_mirror(m.admin, "de1").is_some_and(|d| d["source"] == "config")
    });
    assert_eq!(f.redis.cli(&["HLEN", "{t}:mirrors:dl"]).trim(), "0");
    // A row written by another client of the same Redis, without the
    // fleet's signature, is never applied, though the version says there
    // is something new to read (read every 5 s).
    let evil = r#"{"v":99,"sig":"00","entry":"{\"mirror\":{\"name\":\"evil\",\"http\":\"http://127.0.0.1:9\"}}"}"#;
    f.redis.cli(&["HSET", "{t}:mirrors:dl", "evil", evil]);
    f.redis.cli(&["INCR", "{t}:mirrors:dl:version"]);
    let read = poll(Duration::from_secs(15), || {
        f.members[1]
            .levee
            .stderr()
            .contains("skipping a row of a shared table")
            .then_some(())
    });
    assert!(read.is_some(), "{}", f.members[1].levee.stderr());
    for m in &f.members {
        assert!(find_mirror(m.admin, "evil").is_none(), "m{} took it", m.n);
    }
    let (status, _) = admin_request(
        f.members[1].admin,
        "DELETE",
        "/mirrors/dl/mirrors/de1",
        "{}",
    );
    assert_eq!(status, 404, "de1 has no runtime edit left");
}

/// Redis away: an edit applies at once on the member that took it, which
/// says the fleet did not get it, and reaches the others once Redis is
/// back. A member that starts later, and a Redis restarted empty, catch
/// up; redirecting never stops meanwhile.
#[test]
fn edits_outlive_redis_outages_and_reach_members_that_start_later() {
    let mut f = MirrorFleet::start();
    f.redis.pause();
    let down = poll(Duration::from_secs(15), || {
        (f.members[0].metric("levee_fleet_redis_up") == 0.0).then_some(())
    });
    assert!(down.is_some(), "m0 never noticed Redis hung");
    let v = change(
        f.members[0].admin,
        ("POST", "/mirrors/dl/mirrors/de1/disable"),
        "{}",
        200,
    );
    assert!(
        v["fleet"]
            .as_str()
            .is_some_and(|s| s.starts_with("this member only")),
        "{v}"
    );
    assert_eq!(v["state"], "disabled");
    assert_eq!(f.status(0), 200, "m0 applied the disable at once");
    assert_eq!(f.status(1), 302, "m1 still redirects: it was not told");

    // Back: m0 writes the edit, and the others apply it.
    f.redis.resume();
    everywhere(
        &f,
        &[1, 2],
        Duration::from_secs(20),
        "the edit made while Redis was away",
        |m| find_mirror(m.admin, "de1").is_some_and(|d| d["state"] == "disabled"),
    );
    let row = f.redis.cli(&["HGET", "{t}:mirrors:dl", "de1"]);
    assert!(row.contains(r#"\"enabled\":false"#), "{row}");

    // m2 stops; jp1 is added meanwhile; a member started afterwards on
    // an empty state directory has both edits.
    drop(f.members.pop());
    change(
        f.members[1].admin,
        ("POST", "/mirrors/dl/mirrors"),
        r#"{"name": "jp1", "http": "http://127.0.0.1:9/pub"}"#,
        201,
    );
    let m2 = f.member(2);
    f.members.push(m2);
    everywhere(
        &f,
        &[2],
        Duration::from_secs(10),
        "the list at start",
        |m| {
            find_mirror(m.admin, "jp1").is_some()
                && find_mirror(m.admin, "de1").is_some_and(|d| d["state"] == "disabled")
        },
    );
    assert_eq!(f.status(2), 200);

    // Redis restarted empty: the members write the list back.
    f.redis.restart_empty();
    let rows = poll(Duration::from_secs(20), || {
        (f.redis.cli(&["HLEN", "{t}:mirrors:dl"]).trim() == "2").then_some(())
    });
    assert!(rows.is_some(), "the list was not written back to Redis");
    for n in 0..3 {
        assert!(
            find_mirror(f.members[n].admin, "jp1").is_some(),
            "m{n} lost jp1"
        );
        assert_eq!(f.status(n), 200, "m{n} redirects to the disabled de1");
    }
}
