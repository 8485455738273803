//! What a config that leaves keys out gets.

use super::*;

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
            compress: None,
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
