//! Whole-file tests: a full config, defaults, every example, many errors at
//! once, syntax errors and never panicking.

use std::path::{Path, PathBuf};
use std::time::Duration;

use proptest::prelude::*;

use super::*;

/// Parses `text` as `t.toml` and returns each error's Display.
pub(crate) fn errors_of(text: &str) -> Vec<String> {
    match parse(text, Path::new("t.toml")) {
        Ok(config) => panic!("expected errors, got {config:#?}"),
        Err(e) => e.errors.iter().map(ToString::to_string).collect(),
    }
}

pub(crate) fn ok(text: &str) -> Config {
    match parse(text, Path::new("t.toml")) {
        Ok(config) => config,
        Err(e) => panic!("expected success, got:\n{e}"),
    }
}

const FULL: &str = r#"
workers = 4
pid_file = "/run/levee.pid"
user = "levee"
group = "www-data"
control_socket = "/run/levee/control.sock"

[log]
access = "/var/log/levee/access.log"
format = "json"
level = "levee_http=debug,info"
error = "/var/log/levee/error.log"
error_format = "json"

[limits]
max_request_line = "4k"
max_header_bytes = 65536
max_headers = 50
max_body = "1g"
max_requests_per_connection = 0

[timeouts]
request_head = "5s"
keepalive = 0
client_body = "1m30s"
client_send = "2m"
upstream_connect = "500ms"
upstream_read = 30
upstream_write = "1h"
grace = "10s"

[[listener]]
name = "web"
address = "0.0.0.0:8080"
backlog = 128

[[listener]]
address = "[::1]:8443"

[[route]]
listener = "web"
host = ["Example.com", "*.example.com"]
path = "/api/"
proxy = "app"
preserve_host = false
forward_path = "original"

[[route]]
listener = ["web", "[::1]:8443"]
static = "/var/www"
index = ["index.html", "index.htm"]
follow_symlinks = true

[[route]]
host = "old.example.com"
redirect = "https://example.com{uri}"
status = 301

[[route]]
path = "/health"
respond = "ok\n"
status = 200
content_type = "text/plain"

[upstream.app]
servers = ["127.0.0.1:8081", { address = "app2.internal:8081", weight = 2 }]
keepalive = 16
keepalive_timeout = "30s"

[upstream.api2]
servers = [{ address = "[::1]:9000" }]

[resolver]
servers = ["127.0.0.1:5353", "::1"]
valid = "10s"
"#;

#[test]
fn full_config_becomes_the_expected_model() {
    let config = ok(FULL);
    let expected = Config {
        source: Some(PathBuf::from("t.toml")),
        workers: 4,
        pid_file: Some("/run/levee.pid".into()),
        user: Some("levee".into()),
        group: Some("www-data".into()),
        control_socket: Some("/run/levee/control.sock".into()),
        log: LogConfig {
            access: AccessLogTarget::File("/var/log/levee/access.log".into()),
            format: AccessLogFormat::Json,
            level: "levee_http=debug,info".into(),
            error: ErrorLogTarget::File("/var/log/levee/error.log".into()),
            error_format: ErrorLogFormat::Json,
        },
        limits: Limits {
            max_request_line: 4096,
            max_header_bytes: 65536,
            max_headers: 50,
            max_body: 1 << 30,
            max_requests_per_connection: 0,
            max_rewrites: 10,
        },
        timeouts: Timeouts {
            request_head: Duration::from_secs(5),
            keepalive: Duration::ZERO,
            client_body: Duration::from_secs(90),
            client_send: Duration::from_secs(120),
            upstream_connect: Duration::from_millis(500),
            upstream_read: Duration::from_secs(30),
            upstream_write: Duration::from_secs(3600),
            grace: Duration::from_secs(10),
            tunnel_idle: Duration::from_secs(600),
        },
        listeners: vec![
            Listener {
                name: "web".into(),
                address: "0.0.0.0:8080".parse().expect("literal"),
                backlog: 128,
                protect: Default::default(),
                tls: None,
                proxy_protocol: Vec::new(),
                trusted: Default::default(),
                h2c: false,
                h2_only: false,
                mail: None,
            },
            Listener {
                name: "[::1]:8443".into(),
                address: "[::1]:8443".parse().expect("literal"),
                backlog: 4096,
                protect: Default::default(),
                tls: None,
                proxy_protocol: Vec::new(),
                trusted: Default::default(),
                h2c: false,
                h2_only: false,
                mail: None,
            },
        ],
        routes: vec![
            Route {
                listeners: vec!["web".into()],
                hosts: vec![
                    HostMatch::Exact("example.com".into()),
                    HostMatch::Wildcard(".example.com".into()),
                ],
                path: "/api/".into(),
                action: Action::Proxy(ProxyAction {
                    upstream: "app".into(),
                    preserve_host: false,
                    forward_path: ForwardPath::Original,
                    cache: None,
                }),
                protect: Default::default(),
                rewrite: Default::default(),
                shape: Default::default(),
            },
            Route {
                listeners: vec!["web".into(), "[::1]:8443".into()],
                hosts: vec![],
                path: "/".into(),
                action: Action::Static(StaticAction {
                    root: "/var/www".into(),
                    index: vec!["index.html".into(), "index.htm".into()],
                    follow_symlinks: true,
                    options: Default::default(),
                }),
                protect: Default::default(),
                rewrite: Default::default(),
                shape: Default::default(),
            },
            Route {
                listeners: vec![],
                hosts: vec![HostMatch::Exact("old.example.com".into())],
                path: "/".into(),
                action: Action::Redirect(RedirectAction {
                    to: "https://example.com{uri}".into(),
                    status: 301,
                }),
                protect: Default::default(),
                rewrite: Default::default(),
                shape: Default::default(),
            },
            Route {
                listeners: vec![],
                hosts: vec![],
                path: "/health".into(),
                action: Action::Respond(RespondAction {
                    status: 200,
                    body: "ok\n".into(),
                    content_type: "text/plain".into(),
                }),
                protect: Default::default(),
                rewrite: Default::default(),
                shape: Default::default(),
            },
        ],
        // File order, not name order.
        upstreams: vec![
            Upstream {
                keepalive: 16,
                keepalive_timeout: Duration::from_secs(30),
                ..Upstream::new(
                    "app",
                    vec![
                        Server::new("127.0.0.1:8081"),
                        Server {
                            address: "app2.internal:8081".into(),
                            weight: 2,
                            backup: false,
                        },
                    ],
                )
            },
            Upstream::new("api2", vec![Server::new("[::1]:9000")]),
        ],
        admin: None,
        protect: Default::default(),
        http: Default::default(),
        resolver: Some(Resolver {
            servers: vec![
                "127.0.0.1:5353".parse().expect("addr"),
                "[::1]:53".parse().expect("addr"),
            ],
            valid: Some(Duration::from_secs(10)),
            timeout: Duration::from_secs(5),
        }),
        cache: Default::default(),
        http2: Default::default(),
        fleet: None,
        mirrors: Vec::new(),
        acme: None,
        dns: None,
    };
    assert_eq!(config, expected);
}

#[test]
fn resolver_errors_name_the_key() {
    let errors = errors_of(&format!(
        "{BASE}[resolver]\nservers = [\"dns.example\", 5]\ntimeout = \"0s\"\n"
    ));
    assert!(
        errors
            .iter()
            .any(|e| e.contains("resolver.servers[0]: invalid resolver address `dns.example`")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("resolver.servers[1]")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("resolver.timeout")),
        "{errors:?}"
    );
    let errors = errors_of(&format!("{BASE}[resolver]\nservers = []\n"));
    assert!(
        errors
            .iter()
            .any(|e| e.contains("resolver.servers: at least one resolver address")),
        "{errors:?}"
    );
}

#[test]
fn written_out_and_read_back_is_unchanged() {
    let config = ok(FULL);
    let text = to_toml(&config);
    let again = ok(&text);
    assert_eq!(again.routes, config.routes);
    assert_eq!(again.listeners, config.listeners);
    assert_eq!(again.limits, config.limits);
    assert_eq!(again.timeouts, config.timeouts);
    assert_eq!(again.log, config.log);
    // Upstreams come back in name order.
    let mut upstreams = config.upstreams.clone();
    upstreams.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(again.upstreams, upstreams);
    assert_eq!(validate(&config), Ok(()));
}

#[test]
fn defaults_fill_everything_left_out() {
    let config = ok("[[listener]]\naddress = \"127.0.0.1:80\"\n[[route]]\nstatic = \"/srv\"\n");
    assert!((1..=MAX_WORKERS).contains(&config.workers));
    assert_eq!(config.pid_file, None);
    assert_eq!((&config.user, &config.group), (&None, &None));
    assert_eq!(config.control_socket, None);
    assert_eq!(
        config.log,
        LogConfig {
            access: AccessLogTarget::Stdout,
            format: AccessLogFormat::Combined,
            level: "info".into(),
            error: ErrorLogTarget::Stderr,
            error_format: ErrorLogFormat::Text,
        }
    );
    assert_eq!(
        config.limits,
        Limits {
            max_request_line: 8 * 1024,
            max_header_bytes: 32 * 1024,
            max_headers: 100,
            max_body: 100 * 1024 * 1024,
            max_requests_per_connection: 10_000,
            max_rewrites: 10,
        }
    );
    let s = Duration::from_secs;
    assert_eq!(
        config.timeouts,
        Timeouts {
            request_head: s(10),
            keepalive: s(75),
            client_body: s(60),
            client_send: s(60),
            upstream_connect: s(5),
            upstream_read: s(60),
            upstream_write: s(60),
            grace: s(30),
            tunnel_idle: s(600),
        }
    );
    assert_eq!(
        config.listeners,
        [Listener {
            name: "127.0.0.1:80".into(),
            address: "127.0.0.1:80".parse().expect("literal"),
            backlog: 4096,
            protect: Default::default(),
            tls: None,
            proxy_protocol: Vec::new(),
            trusted: Default::default(),
            h2c: false,
            h2_only: false,
            mail: None,
        }]
    );
    assert_eq!(
        config.routes,
        [Route {
            listeners: vec![],
            hosts: vec![],
            path: "/".into(),
            action: Action::Static(StaticAction {
                root: "/srv".into(),
                index: vec!["index.html".into()],
                follow_symlinks: false,
                options: Default::default(),
            }),
            protect: Default::default(),
            rewrite: Default::default(),
            shape: Default::default(),
        }]
    );
    assert!(config.upstreams.is_empty());
}

#[test]
fn action_option_defaults() {
    let config = ok(r#"
[[listener]]
address = "127.0.0.1:80"
[[route]]
proxy = "app"
[[route]]
path = "/r/"
redirect = "https://{host}{uri}"
[[route]]
path = "/s/"
respond = "hi"
[upstream.app]
servers = ["127.0.0.1:81"]
"#);
    let actions: Vec<&Action> = config.routes.iter().map(|r| &r.action).collect();
    assert_eq!(
        actions,
        [
            &Action::Proxy(ProxyAction {
                upstream: "app".into(),
                preserve_host: true,
                forward_path: Default::default(),
                cache: None
            }),
            &Action::Redirect(RedirectAction {
                to: "https://{host}{uri}".into(),
                status: 302
            }),
            &Action::Respond(RespondAction {
                status: 200,
                body: "hi".into(),
                content_type: "text/plain; charset=utf-8".into()
            }),
        ]
    );
    assert_eq!(config.upstreams[0].keepalive, 64);
    assert_eq!(
        config.upstreams[0].keepalive_timeout,
        Duration::from_secs(60)
    );
}

#[test]
fn workers_auto_is_the_core_count() {
    let config = ok("workers = \"auto\"\n[[listener]]\naddress = \"127.0.0.1:80\"\n");
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    assert_eq!(config.workers, cores.min(MAX_WORKERS));
}

#[test]
fn every_example_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("examples/ exists") {
        let path = entry.expect("readable directory entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            if let Err(e) = load(&path) {
                panic!("{} does not parse:\n{e}", path.display());
            }
            seen.push(path);
        }
    }
    assert!(
        seen.len() >= 3,
        "expected at least 3 examples, found {seen:?}"
    );
}

#[test]
fn docs_cover_every_key() {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/config.md"))
            .expect("docs/config.md exists");
    use crate::walk::*;
    let tables = [
        ROOT_KEYS,
        LOG_KEYS,
        LIMIT_KEYS,
        TIMEOUT_KEYS,
        LISTENER_KEYS,
        TLS_KEYS,
        CERT_KEYS,
        UPSTREAM_TLS_KEYS,
        ROUTE_KEYS,
        ROUTE_REWRITE_KEYS,
        REWRITE_RULE_KEYS,
        STATIC_KEYS,
        UPSTREAM_KEYS,
        SERVER_KEYS,
        HEALTH_CHECK_KEYS,
        ADMIN_KEYS,
        PROTECT_KEYS,
        RATE_LIMIT_KEYS,
        RESOLVER_KEYS,
        CACHE_KEYS,
        DISK_KEYS,
        SHARED_KEYS,
        ROUTE_CACHE_KEYS,
        MAIL_KEYS,
        MIRRORS_KEYS,
        MIRROR_KEYS,
        crate::walk::HTTP2_KEYS,
        HTTP_KEYS,
        ROUTE_SHAPE_KEYS,
        PAGE_KEYS,
        &["set", "add", "remove", "always"],
        FLEET_KEYS,
        ACME_KEYS,
        ACME_DNS_KEYS,
        ON_DEMAND_KEYS,
        DNS_KEYS,
        ZONE_KEYS,
        FLEET_RECORD_KEYS,
    ];
    for key in tables.iter().flat_map(|t| t.iter()) {
        assert!(
            docs.contains(&format!("| `{key}` |"))
                || docs.contains(&format!("`servers[].{key}`"))
                || docs.contains(&format!("## `[{key}]`"))
                || docs.contains(&format!("## `[[{key}]]`"))
                || docs.contains(&format!("## `[{key}.NAME]`")),
            "docs/config.md has no table row for `{key}`"
        );
    }
}

#[test]
fn all_errors_are_reported_at_once_in_file_order() {
    let text = r#"workers = 0
colour = "blue"

[[listener]]
address = "0.0.0.0:80"

[[listener]]
address = "0.0.0.0:80"

[[route]]
host = "a*.com"
proxy = "nope"
static = "/srv"

[[route]]
listener = "admin"
path = "api"
redirect = "/x"
status = 200

[upstream.app]
servers = ["10.0.0.1:99999"]
keepalive_timeout = "soon"
"#;
    assert_eq!(
        errors_of(text),
        [
            "t.toml:1:11: workers: must be between 1 and 1024",
            "t.toml:2:1: colour: unknown key `colour`; expected one of: workers, pid_file, user, group, control_socket, log, limits, timeouts, listener, route, upstream, admin, protect, rate_limit, resolver, cache, http2, fleet, mirrors, acme, dns, http",
            "t.toml:8:11: listener[1].address: duplicate listener address 0.0.0.0:80: listener[0] already listens there",
            "t.toml:11:8: route[0].host: invalid host pattern `a*.com`: `*` is only allowed as a whole first label, as in \"*.example.com\"",
            "t.toml:13:1: route[0].static: a route has exactly one action, but `proxy` is set too; split it into two routes",
            "t.toml:16:12: route[1].listener: unknown listener `admin`; defined listeners: 0.0.0.0:80",
            "t.toml:17:8: route[1].path: path `api` must start with `/`",
            "t.toml:19:10: route[1].status: a redirect status must be 301, 302, 303, 307 or 308",
            "t.toml:22:12: upstream.app.servers[0]: invalid server address `10.0.0.1:99999`: the port must be 1..=65535",
            "t.toml:23:21: upstream.app.keepalive_timeout: invalid duration `soon`: expected a number with a unit (ms, s, m, h) such as \"500ms\" or \"1h30m\"",
        ]
    );
}

#[test]
fn syntax_error_is_the_parsers_with_position() {
    let errors = errors_of("[[listener]]\naddress = \"0.0.0.0:80\"\nbacklog = \n");
    assert_eq!(
        errors,
        ["t.toml:3:11: string values must be quoted, expected literal string"]
    );
    // Defining an upstream twice is a TOML error (duplicate key).
    let errors =
        errors_of("[upstream.a]\nservers = [\"h:1\"]\n[upstream.a]\nservers = [\"h:2\"]\n");
    assert_eq!(errors, ["t.toml:3:11: duplicate key"]);
}

#[test]
fn unreadable_file_is_an_error_without_position() {
    let path = Path::new("/nonexistent/levee.toml");
    let errors = load(path).expect_err("no such file").errors;
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].file, path);
    assert_eq!((errors[0].line, errors[0].column), (0, 0));
    assert!(
        errors[0]
            .to_string()
            .starts_with("/nonexistent/levee.toml: cannot read the config file: "),
        "{}",
        errors[0]
    );
}

#[test]
fn errors_are_std_errors() {
    let e: Box<dyn std::error::Error> =
        Box::new(parse("x = 1", Path::new("t.toml")).expect_err("unknown key"));
    assert!(e.to_string().starts_with("t.toml:1:1: x: unknown key `x`"));
}

const BASE: &str = "[[listener]]\naddress = \"127.0.0.1:80\"\n[[route]]\nproxy = \"app\"\n[upstream.app]\nservers = [\"h:1\"]\n";

/// Fragments a config is made of, so random documents get past the TOML
/// syntax check often and exercise the walker.
fn fragment() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "workers",
        "pid_file",
        "address",
        "name",
        "backlog",
        "listener",
        "host",
        "path",
        "proxy",
        "static",
        "redirect",
        "respond",
        "status",
        "index",
        "servers",
        "weight",
        "keepalive",
        "max_body",
        "grace",
        "access",
        "format",
        "x",
    ]);
    let value = prop::sample::select(vec![
        "\"auto\"",
        "0",
        "-1",
        "70000",
        "9223372036854775807",
        "\"/\"",
        "\"a*.com\"",
        "\"*.b.com\"",
        "\"127.0.0.1:0\"",
        "\"0.0.0.0:80\"",
        "\"h:1\"",
        "\"10s\"",
        "\"8k\"",
        "\"\"",
        "true",
        "1.5",
        "[]",
        "[\"h:1\", { address = \"h:2\", weight = 0 }]",
        "{ address = 1 }",
        "1979-05-27",
        "\"\\u0000\"",
        "\"app\"",
    ]);
    let header = prop::sample::select(vec![
        "[[listener]]",
        "[[route]]",
        "[upstream.app]",
        "[log]",
        "[limits]",
        "[timeouts]",
        "[upstream]",
        "[listener]",
        "[route.x]",
        "[[upstream.app.servers]]",
    ]);
    prop_oneof![
        3 => (key, value).prop_map(|(k, v)| format!("{k} = {v}\n")),
        1 => header.prop_map(|h| format!("{h}\n")),
    ]
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse(&text, Path::new("fuzz.toml"));
    }

    #[test]
    fn random_documents_never_panic_and_fail_with_errors(
        head in prop::collection::vec(fragment(), 0..12),
        base in any::<bool>(),
        tail in prop::collection::vec(fragment(), 0..3),
    ) {
        // With `base`, a valid listener and route sit between random parts,
        // so some documents parse and the success path is exercised too.
        let base = if base { BASE } else { "" };
        let text = format!("{}{base}{}", head.concat(), tail.concat());
        match parse(&text, Path::new("fuzz.toml")) {
            Ok(config) => {
                // Whatever parses is valid by the model's own check too.
                prop_assert_eq!(validate(&config), Ok(()));
            }
            Err(e) => {
                prop_assert!(!e.errors.is_empty());
                for error in &e.errors {
                    prop_assert!(error.line >= 1 && error.column >= 1, "{}", error);
                }
            }
        }
    }
}

#[test]
fn a_tls_config_survives_being_written_out() {
    let config = ok(&format!(
        "{BASE}[listener.tls]\n[[listener.tls.certs]]\ncert = \"a.pem\"\nkey = \"a.key\"\nnames = [\"a.test\"]\n"
    ));
    assert!(config.listeners[0].tls.is_some());
    if let Err(e) = validate(&config) {
        panic!("{e}");
    }
}

#[test]
fn http2_only_is_for_cleartext_listeners() {
    let config = ok("[[listener]]\naddress = \"127.0.0.1:80\"\nhttp2 = \"only\"\n");
    assert!(config.listeners[0].h2c && config.listeners[0].h2_only);
    let written = crate::render::to_toml(&config);
    assert!(written.contains("http2 = \"only\""), "{written}");
    let errors = errors_of(
        "[[listener]]\naddress = \"127.0.0.1:443\"\nhttp2 = \"only\"\n[listener.tls]\n\
         [[listener.tls.certs]]\ncert = \"a.pem\"\nkey = \"a.key\"\nnames = [\"a.test\"]\n",
    );
    assert_eq!(
        errors,
        [
            "t.toml:3:9: listener[0].http2: `only` is for cleartext (h2c) listeners: a TLS listener chooses HTTP/2 by ALPN (`alpn = [\"h2\"]`)"
        ]
    );
}
