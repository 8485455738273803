//! The configs levee runs without a file: `levee` serving a directory and
//! `levee proxy --listen A --to B,C`. Built from the same defaults a file
//! gets; [`crate::validate`] holds them to the same rules.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::model::{
    Action, Config, DEFAULT_BACKLOG, DEFAULT_INDEX, Listener, LogConfig, ProxyAction, Route,
    Server, StaticAction, Upstream,
};

/// The upstream name [`builtin_proxy`] uses.
pub const BUILTIN_UPSTREAM: &str = "backend";

/// One listener on `address`, one route `/` serving files from `root`.
pub fn builtin_static(root: PathBuf, address: SocketAddr) -> Config {
    let action = Action::Static(StaticAction {
        root,
        index: DEFAULT_INDEX.iter().map(|s| (*s).to_owned()).collect(),
        follow_symlinks: false,
        options: Default::default(),
    });
    single_route(address, action, Vec::new())
}

/// One listener on `listen`, one upstream `backend` with `servers` (weight 1
/// each), and one route `/` proxying to it with the client's Host kept.
///
/// The servers are not checked here; pass the result to [`crate::validate`]
/// to report a bad `host:port` or an empty list.
pub fn builtin_proxy(listen: SocketAddr, servers: Vec<String>) -> Config {
    let upstream = Upstream::new(
        BUILTIN_UPSTREAM,
        servers.into_iter().map(Server::new).collect(),
    );
    let action = Action::Proxy(ProxyAction {
        upstream: BUILTIN_UPSTREAM.to_owned(),
        preserve_host: true,
        forward_path: Default::default(),
        cache: None,
    });
    single_route(listen, action, vec![upstream])
}

fn single_route(address: SocketAddr, action: Action, upstreams: Vec<Upstream>) -> Config {
    Config {
        source: None,
        workers: crate::walk::auto_workers(),
        pid_file: None,
        user: None,
        group: None,
        control_socket: None,
        log: LogConfig::default(),
        limits: Default::default(),
        timeouts: Default::default(),
        listeners: vec![Listener {
            name: address.to_string(),
            address,
            backlog: DEFAULT_BACKLOG,
            protect: Default::default(),
            tls: None,
            proxy_protocol: Vec::new(),
            trusted: Default::default(),
            h2c: false,
            h2_only: false,
            mail: None,
        }],
        routes: vec![Route {
            listeners: Vec::new(),
            hosts: Vec::new(),
            path: "/".to_owned(),
            action,
            protect: Default::default(),
            compress: None,
            rewrite: Default::default(),
            shape: Default::default(),
        }],
        upstreams,
        admin: None,
        http: Default::default(),
        protect: Default::default(),
        resolver: None,
        http2: Default::default(),
        compress: Default::default(),
        fleet: None,
        mirrors: Vec::new(),
        acme: None,
        dns: None,
        cache: Default::default(),
    }
}

#[cfg(test)]
mod tests;
