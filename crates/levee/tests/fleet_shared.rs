//! What a fleet shares besides rate limits, end to end with three members
//! (fleet/common.rs) and a real redis-server: the failed-login throttle and
//! the auth negative cache (an IMAP listener per member asking nginx's
//! `auth_http` service, alice's mailbox on a real Dovecot), user moves, and
//! cache purges (a caching route to a real nginx).

#[path = "fleet/common.rs"]
mod common;
#[path = "mail/fixtures.rs"]
#[allow(dead_code)]
mod fixtures;
mod support;

use std::time::{Duration, Instant};

use common::{Member, ping_until_heard, promo};
use fixtures::{alice_selected, auth_service, client_on, imap, read_to_close};
use support::{Dovecot, Nginx, Redis, admin_request, free_port, poll};

/// The spec's bound for a user move or a purge to reach every member.
const WITHIN: Duration = Duration::from_secs(1);

struct MailFleet {
    _dovecot: Dovecot,
    auth: Nginx,
    members: Vec<Member>,
    /// Each member's IMAP port (on 127.0.0.1).
    imap: Vec<u16>,
}

impl MailFleet {
    /// Three members on `redis`, each with an IMAP listener whose
    /// `[listener.mail]` has `mail` besides the auth service, and caching
    /// routes `/c/` and `/tag/` to `origin` (if any).
    fn start(redis: &Redis, mail: &str, origin: Option<&Nginx>) -> MailFleet {
        let dovecot = Dovecot::start(&[("alice", "secret")]);
        let auth = auth_service(dovecot.imap_port, dovecot.imap_port, free_port());
        // Generous: an answer on this loaded machine may take longer than
        // the default 20 ms, and would be decided alone.
        let fleet = format!(
            "name = \"t\"\nredis = \"{}\"\ntimeout = \"500ms\"",
            redis.url()
        );
        let cache = origin.map_or(String::new(), |o| {
            format!(
                "[[route]]\npath = \"/c/\"\nproxy = \"origin\"\ncache = true\n\n\
                 [[route]]\npath = \"/tag/\"\nproxy = \"origin\"\ncache = true\n\n\
                 [upstream.origin]\nservers = [\"{}\"]\n\n[cache]\n",
                o.addr()
            )
        });
        let mut members = Vec::new();
        let mut ports = Vec::new();
        for n in 0..3 {
            let port = free_port();
            let tables = format!(
                "{promo}\n{cache}\n[[listener]]\naddress = \"127.0.0.1:{port}\"\nprotocol = \"imap\"\n\
                 [listener.mail]\nauth_http = \"http://127.0.0.1:{auth}/auth\"\nauth_fail_delay = \"0s\"\n{mail}",
                promo = promo("10/s", 10),
                auth = auth.port(),
            );
            members.push(Member::start(n, &fleet, &tables));
            ports.push(port);
        }
        for m in &members {
            assert!(
                m.wait_redis_up(Duration::from_secs(15)),
                "{}",
                m.levee.stderr()
            );
        }
        MailFleet {
            _dovecot: dovecot,
            auth,
            members,
            imap: ports,
        }
    }

    /// Requests that reached the auth service.
    fn asked(&self) -> usize {
        self.auth
            .settled_entries()
            .iter()
            .filter(|e| e.get("uri") == "/auth")
            .count()
    }

    fn fallbacks(&self, n: usize) -> f64 {
        self.members[n].metric("levee_mail_fleet_fallback_total{what=\"guard\"}")
    }
}

/// The issue: a lockout on one front end meant nothing to the next. Now
/// 40 parallel wrong passwords spread over three members against a limit
/// of 5 reach the auth service 5 times, and alice is locked out at the
/// guesser's address on every member, not at her own.
#[test]
fn a_guesser_spread_over_the_fleet_is_counted_once() {
    let redis = Redis::start();
    let f = MailFleet::start(
        &redis,
        "max_auth_failures = 5\nauth_negative_ttl = \"0s\"\n",
        None,
    );
    let r = client_on("lockout", &f.imap);
    assert_eq!(r["others"], "[]", "{r:?}");
    assert_eq!(r["refused"], "40", "{r:?}");
    let same: Vec<&str> = r["same_address"].split(',').collect();
    assert_eq!(same.len(), 3, "{r:?}");
    assert!(
        same.iter().all(|s| s.contains("AUTHENTICATIONFAILED")),
        "{r:?}"
    );
    assert_eq!(r["other_address"], "OK", "{r:?}");
    for n in 0..3 {
        assert_eq!(f.fallbacks(n), 0.0, "decided alone on m{n}");
    }
    // The limit's 5 guesses, and alice's own login.
    assert_eq!(f.asked(), 6, "the auth service was asked past the limit");
}

/// A login the auth service refused is refused by every member for the
/// negative TTL without asking again; another password is asked about.
#[test]
fn a_refusal_is_remembered_by_every_member() {
    let redis = Redis::start();
    let f = MailFleet::start(&redis, "auth_negative_ttl = \"60s\"\n", None);
    let wrong = |n: usize, pass: &str| imap(f.imap[n], &[&format!("a LOGIN alice {pass}")]);
    assert!(wrong(0, "nope").contains("a NO"), "refused");
    assert_eq!(f.asked(), 1);
    // Stored in the background after the answer: wait for it.
    let stored = poll(Duration::from_secs(5), || {
        (!redis
            .cli(&["--scan", "--pattern", "{t}:mail:n:*"])
            .trim()
            .is_empty())
        .then_some(())
    });
    assert!(stored.is_some(), "the refusal never reached Redis");
    for n in [1, 2] {
        assert!(wrong(n, "nope").contains("a NO"), "refused on m{n}");
    }
    assert_eq!(f.asked(), 1, "another member asked the auth service again");
    assert!(wrong(1, "other").contains("a NO"));
    assert_eq!(f.asked(), 2);
    assert!(wrong(2, "secret").contains("a OK"));
}

/// While Redis is away each member counts alone, on its share of the
/// limit (6 / 3 live members = 2); what it counted is charged to Redis
/// when it is back, so the pair's count does not start again from zero.
#[test]
fn failures_are_counted_on_a_share_while_redis_is_away_and_charged_back() {
    let mut redis = Redis::start();
    let f = MailFleet::start(
        &redis,
        "max_auth_failures = 6\nauth_negative_ttl = \"0s\"\n",
        None,
    );
    for m in &f.members {
        let three = poll(Duration::from_secs(10), || {
            m.ctl_fleet().contains("3 live member(s)").then_some(())
        });
        assert!(three.is_some(), "{}", m.ctl_fleet());
    }
    redis.kill();
    for m in &f.members {
        let down = poll(Duration::from_secs(10), || {
            (m.metric("levee_fleet_redis_up") == 0.0).then_some(())
        });
        assert!(down.is_some(), "{}", m.levee.stderr());
    }
    let guess = |n: usize| imap(f.imap[n], &["a LOGIN alice wrong"]);
    for _ in 0..4 {
        assert!(guess(0).contains("a NO"));
    }
    assert_eq!(f.asked(), 2, "m0's share of 6 among 3 members is 2");
    assert!(f.fallbacks(0) >= 4.0, "{}", f.fallbacks(0));
    redis.restart_empty();
    for m in &f.members {
        assert!(
            m.wait_redis_up(Duration::from_secs(20)),
            "{}",
            m.levee.stderr()
        );
    }
    // m0 charged its 2 when Redis came back: m1 may ask 4 more, not 6.
    for _ in 0..6 {
        assert!(guess(1).contains("a NO"));
    }
    assert_eq!(f.asked(), 6, "the failures counted alone were lost");
}

/// The issue: a user move on one front end left that user's sessions open
/// on the others. A close asked of m2 (`levee ctl close-user`) closes
/// alice's sessions on m0 and m1, with the BYE of a local move, within a
/// second.
#[test]
fn a_user_move_closes_the_users_sessions_on_every_member() {
    let redis = Redis::start();
    let f = MailFleet::start(&redis, "auth_negative_ttl = \"0s\"\n", None);
    assert!(ping_until_heard(
        &f.members[2],
        &f.members,
        "before-the-move"
    ));
    let mut on_m0 = alice_selected(f.imap[0]);
    let mut on_m1 = alice_selected(f.imap[1]);
    let asked = Instant::now();
    let admin = format!("127.0.0.1:{}", f.members[2].admin);
    let out = support::levee_cmd(&["ctl", "--admin", &admin, "close-user", "alice"]);
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["closing"], 0, "m2 has no session of alice's");
    assert_eq!(v["reach"], "every member");
    for s in [&mut on_m0, &mut on_m1] {
        assert_eq!(
            read_to_close(s),
            "* BYE Your mailbox has moved; please log in again\r\n"
        );
    }
    let took = asked.elapsed();
    assert!(took < WITHIN, "closed after {took:?}");
    // Logged just after the sessions were told: the line may come after
    // their BYE.
    for m in &f.members[..2] {
        assert!(
            m.levee
                .wait_stderr("closing a moved user's sessions", Duration::from_secs(5)),
            "{}",
            m.levee.stderr()
        );
    }
}

/// A purge through any member's API empties every member's store of what
/// it names within a second: by URL from m0, by tag from m1.
#[test]
fn a_purge_reaches_every_member() {
    let redis = Redis::start();
    let origin = Nginx::start(support::ORIGIN);
    origin.put_file("c/a.txt", b"0123456789abcdef");
    origin.put_file("tag/a.txt", b"0123456789abcdef");
    let f = MailFleet::start(&redis, "", Some(&origin));
    assert!(ping_until_heard(
        &f.members[0],
        &f.members,
        "before-the-purge"
    ));
    let entries = |m: &Member| m.metric("levee_cache_entries");
    let fill = |path: &str| {
        for m in &f.members {
            assert_eq!(common::send(m, path, 2).admitted, 2, "{path} on m{}", m.n);
        }
    };
    fill("/c/a.txt");
    for m in &f.members {
        assert_eq!(entries(m), 1.0);
    }
    let purge = |m: &Member, body: &str| {
        let (status, text) = admin_request(m.admin, "POST", "/cache/purge", body);
        assert_eq!(status, 200, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(v["fleet"], "sent to every member", "{text}");
        v["purged"].as_u64()
    };
    let purged_everywhere = |from: usize, body: &str| {
        let sent = Instant::now();
        assert_eq!(purge(&f.members[from], body), Some(1), "{body}");
        let gone = poll(WITHIN, || {
            f.members.iter().all(|m| entries(m) == 0.0).then_some(())
        });
        assert!(
            gone.is_some(),
            "{body}: still stored {:?} after",
            sent.elapsed()
        );
    };
    purged_everywhere(0, r#"{"url": "http://fleet/c/a.txt"}"#);
    fill("/tag/a.txt");
    purged_everywhere(1, r#"{"tag": "blue"}"#);
    // Logged just after the store was emptied: the line may come after
    // the metric shows it.
    for m in &f.members[1..] {
        assert!(
            m.levee
                .wait_stderr("fleet: cache purge", Duration::from_secs(5)),
            "{}",
            m.levee.stderr()
        );
    }
}
