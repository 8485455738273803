//! Cross-section checks, and `validate` on configs built in code.

use std::path::Path;

use crate::tests::{errors_of, ok};
use crate::{HostMatch, builtin_proxy, builtin_static, validate};

#[test]
fn duplicate_listener_names_and_addresses() {
    let text = r#"[[listener]]
name = "web"
address = "0.0.0.0:80"

[[listener]]
name = "web"
address = "0.0.0.0:81"

[[listener]]
name = "other"
address = "0.0.0.0:80"
"#;
    assert_eq!(
        errors_of(text),
        [
            "t.toml:6:8: listener[1].name: duplicate listener name `web`: listener[0] has it too",
            "t.toml:11:11: listener[2].address: duplicate listener address 0.0.0.0:80: listener[0] already listens there",
        ]
    );
}

#[test]
fn defaulted_name_clash_is_reported_once() {
    // Same address twice: one error, about the address.
    assert_eq!(
        errors_of("[[listener]]\naddress = \"[::]:80\"\n[[listener]]\naddress = \"[::]:80\"\n"),
        [
            "t.toml:4:11: listener[1].address: duplicate listener address [::]:80: listener[0] already listens there"
        ]
    );
    // A defaulted name equal to another listener's explicit name.
    assert_eq!(
        errors_of(
            "[[listener]]\nname = \"0.0.0.0:80\"\naddress = \"127.0.0.1:81\"\n[[listener]]\naddress = \"0.0.0.0:80\"\n"
        ),
        [
            "t.toml:5:11: listener[1].name: duplicate listener name `0.0.0.0:80` (the default name is the address): listener[0] has it too"
        ]
    );
}

#[test]
fn at_least_one_listener() {
    assert_eq!(
        errors_of("workers = 1\n"),
        ["t.toml:1:1: listener: at least one [[listener]] with an `address` is required"]
    );
    assert_eq!(
        errors_of(""),
        ["t.toml:1:1: listener: at least one [[listener]] with an `address` is required"]
    );
}

#[test]
fn routes_must_name_existing_listeners_and_upstreams() {
    let text = r#"[[listener]]
name = "web"
address = "0.0.0.0:80"

[[route]]
listener = ["web", "admin"]
proxy = "app"

[[route]]
path = "/other/"
proxy = "ghost"

[upstream.app]
servers = ["127.0.0.1:81"]
"#;
    assert_eq!(
        errors_of(text),
        [
            "t.toml:6:20: route[0].listener[1]: unknown listener `admin`; defined listeners: web",
            "t.toml:11:9: route[1].proxy: unknown upstream `ghost`; defined upstreams: app",
        ]
    );
    assert_eq!(
        errors_of("[[listener]]\naddress = \"0.0.0.0:80\"\n[[route]]\nproxy = \"app\"\n"),
        ["t.toml:4:9: route[0].proxy: unknown upstream `app`; no upstreams are defined"]
    );
}

#[test]
fn invalid_listener_address_does_not_cascade() {
    // The route names the listener by its (defaulted) name; only the
    // address itself is reported.
    assert_eq!(
        errors_of(
            "[[listener]]\naddress = \"nowhere:80\"\n[[route]]\nlistener = \"nowhere:80\"\nrespond = \"x\"\n"
        ),
        [
            "t.toml:2:11: listener[0].address: invalid address `nowhere:80`: expected IP:port such as \"0.0.0.0:8080\" or \"[::]:8080\""
        ]
    );
}

#[test]
fn builtins_pass_validation() {
    let addr = "127.0.0.1:8080".parse().expect("literal");
    assert_eq!(validate(&builtin_static("/srv/www".into(), addr)), Ok(()));
    let servers = vec![
        "127.0.0.1:9000".to_owned(),
        "[::1]:9001".to_owned(),
        "app:80".to_owned(),
    ];
    assert_eq!(validate(&builtin_proxy(addr, servers)), Ok(()));
}

#[test]
fn validate_reports_key_paths_without_positions() {
    let addr = "127.0.0.1:8080".parse().expect("literal");
    let config = builtin_proxy(addr, vec!["ok:1".into(), "http://bad".into()]);
    let errors = validate(&config).expect_err("bad server").errors;
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "<built-in>: upstream.backend.servers[1].address: invalid server address `http://bad`: the port must be a number"
        ]
    );
    let empty = builtin_proxy(addr, Vec::new());
    let shown: Vec<String> = validate(&empty)
        .expect_err("no servers")
        .errors
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        shown,
        ["<built-in>: upstream.backend.servers: an upstream needs at least one server"]
    );
}

#[test]
fn validate_catches_what_the_file_format_cannot_hold() {
    let mut config = ok(
        "[[listener]]\naddress = \"127.0.0.1:80\"\n[[route]]\nhost = \"a.com\"\nrespond = \"x\"\n",
    );
    assert_eq!(validate(&config), Ok(()));
    config.routes[0].hosts = vec![HostMatch::Exact("A.com".into())];
    let errors = validate(&config).expect_err("upper-case host").errors;
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].key, "route[0]");
    assert_eq!(errors[0].file, Path::new("t.toml"));
    config.routes[0].hosts = vec![HostMatch::Wildcard("a.com".into())];
    let errors = validate(&config).expect_err("wildcard without dot").errors;
    assert_eq!(errors[0].key, "route[0].host[0]");
    config.routes[0].hosts.clear();
    config.timeouts.grace = std::time::Duration::from_micros(1500);
    let errors = validate(&config).expect_err("sub-millisecond").errors;
    assert_eq!(errors[0].key, "timeouts");
    config.timeouts.grace = std::time::Duration::from_millis(1500);
    config.workers = 0;
    let errors = validate(&config).expect_err("no workers").errors;
    assert_eq!(errors[0].key, "workers");
}

#[test]
fn a_route_hidden_by_an_earlier_one_is_an_error() {
    let head = "[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:80\"\n\
                [[listener]]\nname = \"b\"\naddress = \"127.0.0.1:81\"\n";
    // Two identical routes: the second is named with the first's place.
    assert_eq!(
        errors_of(&format!(
            "{head}[[route]]\npath = \"/a/\"\nrespond = \"1\"\n[[route]]\npath = \"/a/\"\nrespond = \"2\"\n"
        )),
        [
            "t.toml:11:8: route[1].path: this route is never used: route[0] (line 8) has the same path `/a/` for the same listeners and hosts, and comes first; remove one, or change its path, host or listener"
        ]
    );
    // Without `path` both are `/`; the error points at the table.
    assert_eq!(
        errors_of(&format!(
            "{head}[[route]]\nrespond = \"1\"\n[[route]]\nrespond = \"2\"\n"
        )),
        [
            "t.toml:9:1: route[1]: this route is never used: route[0] (line 7) has the same path `/` for the same listeners and hosts, and comes first; remove one, or change its path, host or listener"
        ]
    );
    // Covered by two earlier routes together, host by host and listener by listener.
    let covered = format!(
        "{head}[[route]]\nlistener = \"a\"\nhost = [\"x.test\", \"y.test\"]\nrespond = \"1\"\n\
         [[route]]\nlistener = \"b\"\nhost = \"x.test\"\nrespond = \"2\"\n\
         [[route]]\nhost = \"x.test\"\nrespond = \"3\"\n"
    );
    assert_eq!(errors_of(&covered).len(), 1, "{:?}", errors_of(&covered));
    assert!(errors_of(&covered)[0].contains("route[2]: this route is never used: route[0]"));
}

#[test]
fn routes_that_differ_somewhere_are_reachable() {
    let head = "[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:80\"\n\
                [[listener]]\nname = \"b\"\naddress = \"127.0.0.1:81\"\n";
    for routes in [
        // Another path.
        "[[route]]\npath = \"/a\"\nrespond = \"1\"\n[[route]]\npath = \"/a/\"\nrespond = \"2\"\n",
        // A host is more specific than none.
        "[[route]]\nrespond = \"1\"\n[[route]]\nhost = \"x.test\"\nrespond = \"2\"\n",
        // The second also serves listener b.
        "[[route]]\nlistener = \"a\"\nrespond = \"1\"\n[[route]]\nrespond = \"2\"\n",
        // One more host than the first.
        "[[route]]\nhost = \"x.test\"\nrespond = \"1\"\n[[route]]\nhost = [\"x.test\", \"*.y.test\"]\nrespond = \"2\"\n",
    ] {
        ok(&format!("{head}{routes}"));
    }
}

#[test]
fn listener_addresses_the_os_cannot_bind_together() {
    assert_eq!(
        errors_of(
            "[[listener]]\naddress = \"0.0.0.0:80\"\n[[listener]]\naddress = \"127.0.0.1:80\"\n"
        ),
        [
            "t.toml:4:11: listener[1].address: listener address 127.0.0.1:80 overlaps listener[0] (0.0.0.0:80) on the same port: the OS lets only one of them bind; keep one"
        ]
    );
    // IPv6 listeners are IPv6-only: `[::]` and `0.0.0.0` share a port.
    ok(
        "[[listener]]\naddress = \"0.0.0.0:80\"\n[[listener]]\naddress = \"[::]:80\"\n[[listener]]\naddress = \"127.0.0.1:81\"\n",
    );
    assert_eq!(
        errors_of("[[listener]]\naddress = \"[::ffff:127.0.0.1]:8080\"\n"),
        [
            "t.toml:2:11: listener[0].address: `[::ffff:127.0.0.1]:8080` is an IPv4-mapped IPv6 address, which cannot be listened on; write \"127.0.0.1:8080\""
        ]
    );
}
