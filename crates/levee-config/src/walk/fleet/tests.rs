use std::path::Path;
use std::time::Duration;

use super::parse_addr;
use crate::model::{CredentialSource, RedisTarget, Scope};

fn parse(fleet: &str, extra: &str) -> Result<crate::Config, crate::ConfigErrors> {
    let text = format!(
        "[[listener]]\naddress = \"127.0.0.1:80\"\n[[route]]\nrespond = \"hi\"\n{extra}\n[fleet]\n{fleet}\n"
    );
    crate::parse(&text, Path::new("t.toml"))
}

fn errors(fleet: &str, extra: &str) -> Vec<String> {
    parse(fleet, extra)
        .expect_err("invalid")
        .errors
        .iter()
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn addresses_parse_with_defaults() {
    let a = parse_addr("redis://10.0.0.1", 6379, true).expect("valid");
    assert_eq!(
        (a.host.as_str(), a.port, a.tls, a.db),
        ("10.0.0.1", 6379, false, 0)
    );
    let a = parse_addr("rediss://Cache.Example:6380/3", 6379, true).expect("valid");
    assert_eq!(
        (a.host.as_str(), a.port, a.tls, a.db),
        ("cache.example", 6380, true, 3)
    );
    let a = parse_addr("[::1]:7000", 6379, false).expect("valid");
    assert_eq!((a.host.as_str(), a.port), ("::1", 7000));
    assert_eq!(a.to_string(), "redis://[::1]:7000");
    for bad in [
        "http://x",
        "redis://:secret@host",
        "redis://user:pw@host:6379",
        "redis://host:0",
        "redis://host:99999",
        "redis://host/x",
        "redis://host?timeout=1",
        "redis://",
        "redis://[::1",
    ] {
        assert!(parse_addr(bad, 6379, true).is_err(), "{bad}");
    }
    assert!(parse_addr("redis://host/2", 6379, false).is_err());
}

#[test]
fn a_fleet_section_becomes_the_model_and_survives_a_round_trip() {
    let config = parse(
        "name = \"shop\"\ninstance = \"web-1\"\nsentinel = [\"127.0.0.1\", \"rediss://[::1]:26380\"]\nmaster = \"main\"\n",
        "",
    );
    // Mixed TLS is refused; the same with TLS on both parses.
    assert!(config.is_err());
    let config = parse(
        "name = \"shop\"\ninstance = \"web-1\"\nsentinel = [\"rediss://127.0.0.1\", \"rediss://[::1]:26380\"]\n\
         master = \"main\"\nca_file = \"ca.pem\"\ncredentials_env = \"REDIS_AUTH\"\ntimeout = \"50ms\"\nheartbeat = \"3s\"\n",
        "",
    )
    .expect("valid");
    let f = config.fleet.as_ref().expect("fleet");
    assert_eq!(
        (f.name.as_str(), f.instance.as_deref()),
        ("shop", Some("web-1"))
    );
    match &f.redis {
        RedisTarget::Sentinel { master, sentinels } => {
            assert_eq!(master, "main");
            assert_eq!(sentinels[0].port, 26379);
            assert!(sentinels.iter().all(|s| s.tls));
        }
        other => panic!("{other:?}"),
    }
    let creds = f.credentials.as_ref().expect("credentials");
    assert_eq!(creds.source, CredentialSource::Env("REDIS_AUTH".into()));
    assert_eq!(
        (creds.at.key.as_str(), creds.at.line),
        ("fleet.credentials_env", 12)
    );
    assert_eq!(f.timeout, Duration::from_millis(50));
    // A 3 s heartbeat with no TTL written gets five beats, not the 5 s default.
    assert_eq!(f.heartbeat_ttl, Duration::from_secs(15));
    let again = crate::parse(&crate::to_toml(&config), Path::new("t.toml")).expect("round trip");
    assert_eq!(again.fleet, config.fleet);
    crate::validate(&config).expect("validates");
}

#[test]
fn defaults_and_cluster() {
    let config = parse(
        "name = \"a\"\ncluster = [\"10.0.0.1:7000\", \"10.0.0.2:7000\"]\n",
        "",
    )
    .expect("valid");
    let f = config.fleet.expect("fleet");
    assert_eq!(f.timeout, Duration::from_millis(20));
    assert_eq!(
        (f.heartbeat, f.heartbeat_ttl),
        (Duration::from_secs(1), Duration::from_secs(5))
    );
    assert!(matches!(&f.redis, RedisTarget::Cluster(s) if s.len() == 2));
    assert_eq!(f.instance, None);
    assert_eq!(f.credentials, None);
}

#[test]
fn every_mistake_is_reported_at_its_key() {
    assert_eq!(
        errors(
            "name = \"a:b\"\nredis = \"redis://h\"\ncluster = [\"h\"]\ncredentials_file = \"f\"\ncredentials_env = \"1X\"\n\
             timeout = \"11s\"\nheartbeat_ttl = \"1s\"\nmaster = \"m\"\nca_file = \"ca.pem\"",
            "",
        ),
        [
            "t.toml:6:1: fleet: set only one of redis, cluster",
            "t.toml:6:1: fleet: set `credentials_file` or `credentials_env`, not both",
            "t.toml:7:8: fleet.name: invalid fleet name `a:b`: use at most 64 letters, digits, `-`, `_` or `.`",
            "t.toml:12:11: fleet.timeout: must be at most 10s",
            "t.toml:13:17: fleet.heartbeat_ttl: must be at least twice `heartbeat`, or one late heartbeat marks a live member stale",
        ]
    );
    assert_eq!(
        errors(
            "name = \"a\"\nredis = \"redis://h\"\nheartbeat_ttl = \"1s\"\nca_file = \"x\"\nmaster = \"m\"",
            ""
        ),
        [
            "t.toml:9:17: fleet.heartbeat_ttl: must be at least twice `heartbeat`, or one late heartbeat marks a live member stale",
            "t.toml:10:11: fleet.ca_file: `ca_file` is for TLS: write the addresses as rediss://",
            "t.toml:11:10: fleet.master: `master` goes with `sentinel`",
        ]
    );
    assert_eq!(
        errors("name = \"a\"\nsentinel = \"h\"", ""),
        ["t.toml:6:1: fleet: `sentinel` needs `master`, the name the sentinels watch"]
    );
    assert_eq!(
        errors(
            "name = \"a\"\nredis = \"redis://u:p@h\"\ncredentials_env = \"A-B\"",
            ""
        ),
        [
            "t.toml:8:9: fleet.redis: invalid Redis address: a user name or password does not go in this URL \
             (`levee config dump` and the logs would show it; the URL is not repeated here); use `credentials_file` or \
             `credentials_env`",
            "t.toml:9:19: fleet.credentials_env: `A-B` is not an environment variable name",
        ]
    );
}

#[test]
fn fleet_scope_needs_a_fleet() {
    let rule = "[rate_limit.promo]\nkey = \"query:code\"\nrate = \"100/m\"\nburst = 100\nscope = \"fleet\"\n";
    let config = parse("name = \"a\"\nredis = \"redis://h\"", rule).expect("valid");
    assert_eq!(config.protect.rate_limits[0].scope, Scope::Fleet);
    let again = crate::parse(&crate::to_toml(&config), Path::new("t.toml")).expect("round trip");
    assert_eq!(again.protect, config.protect);
    let text =
        format!("[[listener]]\naddress = \"127.0.0.1:80\"\n[[route]]\nrespond = \"hi\"\n{rule}");
    let e = crate::parse(&text, Path::new("t.toml")).expect_err("no fleet");
    assert_eq!(
        e.errors[0].to_string(),
        "t.toml:9:9: rate_limit.promo.scope: `scope = \"fleet\"` needs a [fleet] section (docs/fleet.md)"
    );
    let fast = "[rate_limit.f]\nkey = \"path\"\nrate = \"1000000/500ms\"\nscope = \"fleet\"\n";
    let e = parse("name = \"a\"\nredis = \"redis://h\"", fast).expect_err("too fast");
    assert!(
        e.errors[0].message.contains("one request per microsecond"),
        "{e}"
    );
    let odd = "[rate_limit.f]\nkey = \"path\"\nrate = \"1/s\"\nscope = \"world\"\n";
    let e = parse("name = \"a\"\nredis = \"redis://h\"", odd).expect_err("unknown scope");
    assert!(e.errors[0].message.contains("unknown scope `world`"), "{e}");
}
