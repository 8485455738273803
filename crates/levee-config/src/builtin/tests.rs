use std::net::SocketAddr;
use std::path::Path;

use super::*;
use crate::{parse, to_toml};

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("literal address")
}

#[test]
fn static_is_one_listener_and_one_route() {
    let config = builtin_static("/srv/www".into(), addr("0.0.0.0:8080"));
    assert_eq!(config.source, None);
    assert_eq!(
        config.listeners,
        [Listener {
            name: "0.0.0.0:8080".into(),
            address: addr("0.0.0.0:8080"),
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
    assert_eq!(config.routes.len(), 1);
    assert_eq!(config.routes[0].path, "/");
    assert!(config.routes[0].hosts.is_empty() && config.routes[0].listeners.is_empty());
    assert_eq!(
        config.routes[0].action,
        Action::Static(StaticAction {
            root: "/srv/www".into(),
            index: vec!["index.html".into()],
            follow_symlinks: false,
            options: Default::default(),
        })
    );
    assert!(config.upstreams.is_empty());
}

#[test]
fn proxy_is_one_upstream_named_backend() {
    let config = builtin_proxy(addr("[::]:80"), vec!["a:1".into(), "b:2".into()]);
    assert_eq!(config.listeners[0].name, "[::]:80");
    assert_eq!(
        config.upstreams,
        [Upstream::new(
            "backend",
            vec![Server::new("a:1"), Server::new("b:2")]
        )]
    );
    assert_eq!(
        config.routes[0].action,
        Action::Proxy(ProxyAction {
            upstream: "backend".into(),
            preserve_host: true,
            forward_path: Default::default(),
            cache: None,
        })
    );
}

#[test]
fn builtins_equal_what_their_file_form_parses_to() {
    for config in [
        builtin_static("/srv/www".into(), addr("127.0.0.1:8080")),
        builtin_proxy(addr("127.0.0.1:8080"), vec!["127.0.0.1:9000".into()]),
    ] {
        let mut parsed = parse(&to_toml(&config), Path::new("x.toml")).expect("builtin is valid");
        parsed.source = None;
        assert_eq!(parsed, config);
    }
}
