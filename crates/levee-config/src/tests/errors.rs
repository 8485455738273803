//! Errors: many at once in file order, each at file:line:column and
//! its key; syntax errors as the TOML parser reports them.

use super::*;

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
            "t.toml:2:1: colour: unknown key `colour`; expected one of: workers, pid_file, user, group, control_socket, log, limits, timeouts, listener, route, upstream, admin, protect, rate_limit, resolver, cache, http2, compress, fleet, mirrors, acme, dns, http",
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
