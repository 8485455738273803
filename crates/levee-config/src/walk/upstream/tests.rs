//! Balancing, health and retry keys: parsed values and errors.

use std::time::Duration;

use crate::model::*;
use crate::tests::{errors_of, ok};
use crate::{to_toml, validate};

const L: &str = "[[listener]]\naddress = \"127.0.0.1:80\"\n";

fn upstream(rest: &str) -> Upstream {
    let config = ok(&format!("{L}[upstream.app]\nservers = [\"a:1\"]\n{rest}"));
    config.upstreams.into_iter().next().expect("one upstream")
}

fn errors(rest: &str) -> Vec<String> {
    errors_of(&format!("{L}[upstream.app]\nservers = [\"a:1\"]\n{rest}"))
}

#[test]
fn defaults() {
    let u = upstream("");
    assert_eq!(u.balance, Balance::RoundRobin);
    assert_eq!(u.passive, PassiveHealth::default());
    assert!(
        u.passive.on_status.is_empty(),
        "statuses never eject unless asked"
    );
    assert_eq!(u.passive.max_ejected_percent, 50);
    assert_eq!(u.health_check, None);
    assert_eq!(u.retry.on_status, [502, 503, 504]);
    assert_eq!(u.retry.retries, 2);
    assert_eq!(u.slow_start, Duration::from_secs(10));
}

#[test]
fn every_key_parses_and_round_trips() {
    let text = format!(
        r#"{L}[upstream.app]
servers = ["a:1", {{ address = "b:2", weight = 3, backup = true }}]
balance = "hash"
hash_key = "header:X-User"
max_fails = 5
fail_timeout = "2s"
max_ejection = "1m"
eject_on_status = [502, 500]
max_ejected_percent = 34
slow_start = "30s"
retries = 1
retry_on_status = [503]
retry_budget = 50
resolve_interval = "5s"

[upstream.app.health_check]
interval = "1s"
timeout = "500ms"
rise = 1
fall = 2
jitter = 0
method = "HEAD"
path = "/health?x=1"
status = "200-204"
body = "ok"

[upstream.db]
servers = ["c:3"]
balance = "sticky"
sticky_cookie = "srv"
sticky_cookie_secure = true
sticky_cookie_same_site = "None"
sticky_cookie_max_age = "1h"
health_check = {{ type = "tcp" }}
"#
    );
    let config = ok(&text);
    let u = &config.upstreams[0];
    assert_eq!(u.balance, Balance::Hash(HashKey::Header("x-user".into())));
    assert!(u.servers[1].backup);
    assert_eq!(u.passive.max_fails, 5);
    assert_eq!(u.passive.on_status.iter().collect::<Vec<_>>(), [500, 502]);
    assert!(u.passive.on_status.contains(502) && !u.passive.on_status.contains(503));
    assert_eq!(u.passive.max_ejected_percent, 34);
    assert_eq!(u.retry.on_status, [503]);
    assert_eq!(u.retry.budget_percent, 50);
    let hc = u.health_check.as_ref().expect("a check");
    assert_eq!(hc.timeout, Duration::from_millis(500));
    assert_eq!(
        hc.kind,
        CheckKind::Http(HttpCheck {
            method: "HEAD".into(),
            path: "/health?x=1".into(),
            status: (200, 204),
            body: Some("ok".into()),
        })
    );
    let db = &config.upstreams[1];
    assert_eq!(
        db.balance,
        Balance::Sticky {
            cookie: "srv".into(),
            attributes: CookieAttributes {
                secure: true,
                same_site: Some(SameSite::None),
                max_age: Some(Duration::from_secs(3600)),
            },
        }
    );
    assert_eq!(
        db.health_check.as_ref().map(|h| &h.kind),
        Some(&CheckKind::Tcp)
    );
    let again = ok(&to_toml(&config));
    let mut upstreams = config.upstreams.clone();
    upstreams.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(again.upstreams, upstreams);
    assert_eq!(validate(&config), Ok(()));
}

#[test]
fn errors_name_the_key() {
    assert_eq!(
        errors("balance = \"random\"\n"),
        [
            "t.toml:5:11: upstream.app.balance: unknown balance `random`; expected \"round_robin\", \"least_conn\", \"latency\", \"hash\" or \"sticky\""
        ]
    );
    assert_eq!(
        errors("balance = \"hash\"\n"),
        ["t.toml:3:1: upstream.app.hash_key: missing required key `hash_key`"]
    );
    assert_eq!(
        errors("hash_key = \"uri\"\n"),
        ["t.toml:5:12: upstream.app.hash_key: `hash_key` is only allowed with balance = \"hash\""]
    );
    assert_eq!(
        errors("balance = \"hash\"\nhash_key = \"body\"\n"),
        [
            "t.toml:6:12: upstream.app.hash_key: unknown hash_key `body`; expected \"client_ip\", \"uri\", \"header:NAME\" or \"cookie:NAME\""
        ]
    );
    assert_eq!(
        errors("retry_on_status = [404]\n"),
        ["t.toml:5:20: upstream.app.retry_on_status[0]: must be between 500 and 599"]
    );
    assert_eq!(
        errors(
            "eject_on_status = [500, 404]
"
        ),
        ["t.toml:5:25: upstream.app.eject_on_status[1]: must be between 500 and 599"]
    );
    assert_eq!(
        errors(
            "max_ejected_percent = 101
"
        ),
        ["t.toml:5:23: upstream.app.max_ejected_percent: must be between 0 and 100"]
    );
    assert_eq!(
        errors("[upstream.app.health_check]\ntype = \"tcp\"\npath = \"/\"\n"),
        ["t.toml:7:8: upstream.app.health_check.path: `path` is only allowed with type = \"http\""]
    );
    assert_eq!(
        errors("[upstream.app.health_check]\nstatus = \"300-200\"\n"),
        [
            "t.toml:6:10: upstream.app.health_check.status: invalid status range `300-200`; expected \"LOW-HIGH\" within 100-599"
        ]
    );
}

#[test]
fn all_backup_servers_is_an_error() {
    assert_eq!(
        errors_of(&format!(
            "{L}[upstream.app]\nservers = [{{ address = \"a:1\", backup = true }}]\n"
        )),
        [
            "t.toml:4:11: upstream.app.servers: every server is a backup; at least one must be a primary"
        ]
    );
}

#[test]
fn protocol_parses_round_trips_and_is_checked() {
    assert_eq!(upstream("").protocol, UpstreamProtocol::Http1);
    let u = upstream("protocol = \"h2c\"\n");
    assert_eq!(u.protocol, UpstreamProtocol::H2c);
    let config = ok(&format!(
        "{L}[upstream.app]\nservers = [\"a:1\"]\nprotocol = \"h2\"\n[upstream.app.tls]\n"
    ));
    assert_eq!(config.upstreams[0].protocol, UpstreamProtocol::H2);
    let again = ok(&to_toml(&config));
    assert_eq!(again.upstreams[0].protocol, UpstreamProtocol::H2);

    let e = errors("protocol = \"h3\"\n");
    assert!(
        e.iter()
            .any(|e| e.starts_with("t.toml:5:12: upstream.app.protocol: `h3`: expected")),
        "{e:?}"
    );
    let e = errors("protocol = \"h2\"\n");
    assert!(has(&e, "upstream.app.protocol: `h2` speaks TLS"), "{e:?}");
    let e = errors("protocol = \"h2c\"\nproxy_protocol = \"v2\"\n");
    assert!(
        has(&e, "upstream.app.protocol: an HTTP/2 upstream cannot take"),
        "{e:?}"
    );
    let e = errors("protocol = \"h2c\"\nhealth_check = { type = \"http\" }\n");
    assert!(
        has(
            &e,
            "upstream.app.health_check: an upstream with `tls` or an HTTP/2"
        ),
        "{e:?}"
    );
    let u = upstream("protocol = \"h2c\"\nhealth_check = { type = \"tcp\" }\n");
    assert_eq!(u.health_check.map(|h| h.kind), Some(CheckKind::Tcp));
}

fn has(errors: &[String], needle: &str) -> bool {
    errors.iter().any(|e| e.contains(needle))
}
