//! A whole config file: the model it becomes, and the same model after
//! being written out and read back.

use super::*;

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
                compress: None,
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
                compress: None,
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
                compress: None,
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
                compress: None,
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
        compress: Default::default(),
        fleet: None,
        mirrors: Vec::new(),
        acme: None,
        dns: None,
    };
    assert_eq!(config, expected);
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
fn a_tls_config_survives_being_written_out() {
    let config = ok(&format!(
        "{BASE}[listener.tls]\n[[listener.tls.certs]]\ncert = \"a.pem\"\nkey = \"a.key\"\nnames = [\"a.test\"]\n"
    ));
    assert!(config.listeners[0].tls.is_some());
    if let Err(e) = validate(&config) {
        panic!("{e}");
    }
}
