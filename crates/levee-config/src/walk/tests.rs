//! Each kind of per-value error, with its exact position and key path.

use crate::tests::{errors_of, ok};

/// Lines 1-2 of most documents below: one valid listener.
const L: &str = "[[listener]]\naddress = \"127.0.0.1:80\"\n";

fn with_listener(rest: &str) -> Vec<String> {
    errors_of(&format!("{L}{rest}"))
}

#[test]
fn unknown_keys_point_at_the_key_and_suggest() {
    assert_eq!(
        errors_of("[[listener]]\nadress = \"127.0.0.1:80\"\n"),
        [
            "t.toml:1:1: listener[0].address: missing required key `address`",
            "t.toml:2:1: listener[0].adress: unknown key `adress`; did you mean `address`?",
        ]
    );
    assert_eq!(
        with_listener("[log]\nlevel = \"info\"\nfromat = \"json\"\n"),
        ["t.toml:5:1: log.fromat: unknown key `fromat`; did you mean `format`?"]
    );
    assert_eq!(
        with_listener("[[route]]\nrespond = \"x\"\n  colour = 1\n"),
        [
            "t.toml:5:3: route[0].colour: unknown key `colour`; expected one of: listener, host, path, proxy, static, redirect, respond, mirrors, preserve_host, forward_path, index, follow_symlinks, status, content_type, allow, deny, auth_basic_file, auth_realm, rate_limit, compress, cache, cache_key_drop_params, cache_key_sort_params, cache_key_headers, cache_key_cookies, cache_bypass_cookies, cache_bypass_headers, cache_methods, cache_status, cache_stale_if_down, cache_strip_set_cookie, strip_prefix, add_prefix, rewrite, dotfiles, dotfiles_allow, expires, expires_by_extension, listing, try_files, request_headers, response_headers, hide_upstream_server, error_pages, intercept_errors"
        ]
    );
    assert_eq!(
        with_listener("[upstream.app]\nservers = [{ address = \"h:1\", wieght = 2 }]\n"),
        [
            "t.toml:4:31: upstream.app.servers[0].wieght: unknown key `wieght`; did you mean `weight`?"
        ]
    );
    assert_eq!(
        with_listener("[timeouts]\nidle = \"5s\"\n"),
        [
            "t.toml:4:1: timeouts.idle: unknown key `idle`; expected one of: request_head, keepalive, client_body, client_send, upstream_connect, upstream_read, upstream_write, grace, tunnel_idle"
        ]
    );
}

#[test]
fn wrong_types_point_at_the_value() {
    assert_eq!(
        errors_of(&format!("workers = true\n{L}")),
        ["t.toml:1:11: workers: expected an integer, found boolean"]
    );
    assert_eq!(
        with_listener("[log]\nformat = 1\n"),
        ["t.toml:4:10: log.format: expected a string, found integer"]
    );
    assert_eq!(
        errors_of(&format!("log = \"stdout\"\n{L}")),
        ["t.toml:1:7: log: expected a table, found string"]
    );
    assert_eq!(
        with_listener("[[route]]\npath = 1\nrespond = \"x\"\n"),
        ["t.toml:4:8: route[0].path: expected a string, found integer"]
    );
    assert_eq!(
        with_listener("[[route]]\nhost = 5\nrespond = \"x\"\n"),
        ["t.toml:4:8: route[0].host: expected a string or an array of strings, found integer"]
    );
    assert_eq!(
        with_listener("[[route]]\nhost = [\"a.com\", 5]\nrespond = \"x\"\n"),
        ["t.toml:4:18: route[0].host[1]: expected a string, found integer"]
    );
    assert_eq!(
        with_listener(
            "[[route]]\nproxy = \"app\"\npreserve_host = \"yes\"\n[upstream.app]\nservers = [\"h:1\"]\n"
        ),
        ["t.toml:5:17: route[0].preserve_host: expected a boolean (true or false), found string"]
    );
    assert_eq!(
        with_listener(
            "[[route]]\nproxy = \"app\"\nforward_path = \"raw\"\n[upstream.app]\nservers = [\"h:1\"]\n"
        ),
        ["t.toml:5:16: route[0].forward_path: `raw`: expected \"normalised\" or \"original\""]
    );
    assert_eq!(
        with_listener("[[route]]\npath = \"/%61dmin/\"\nrespond = \"x\"\n"),
        [
            "t.toml:4:8: route[0].path: path `/%61dmin/` must not contain `%`: routes match the decoded path, so write the character itself"
        ]
    );
    assert_eq!(
        with_listener("[upstream.app]\nservers = \"h:1\"\n"),
        ["t.toml:4:11: upstream.app.servers: expected an array, found string"]
    );
    assert_eq!(
        with_listener("[upstream.app]\nservers = [true]\n"),
        [
            "t.toml:4:12: upstream.app.servers[0]: expected \"host:port\" or { address = \"host:port\", weight = N }, found boolean"
        ]
    );
    assert_eq!(
        with_listener("[timeouts]\ngrace = 1.5\n"),
        [
            "t.toml:4:9: timeouts.grace: expected a duration such as \"10s\" or an integer number of seconds, found float"
        ]
    );
    assert_eq!(
        with_listener("[limits]\nmax_body = true\n"),
        [
            "t.toml:4:12: limits.max_body: expected a size such as \"8k\" or an integer number of bytes, found boolean"
        ]
    );
}

#[test]
fn single_table_where_an_array_of_tables_belongs() {
    assert_eq!(
        errors_of("[listener]\naddress = \"127.0.0.1:80\"\n"),
        [
            "t.toml:1:1: listener: expected an array of tables: write [[listener]], not [listener]",
            "t.toml:1:1: listener: at least one [[listener]] with an `address` is required",
        ]
    );
}

#[test]
fn impossible_values() {
    assert_eq!(
        errors_of(&format!("workers = 2000\n{L}")),
        ["t.toml:1:11: workers: must be between 1 and 1024"]
    );
    assert_eq!(
        errors_of(&format!("workers = \"many\"\n{L}")),
        ["t.toml:1:11: workers: expected \"auto\" or an integer, found \"many\""]
    );
    assert_eq!(
        errors_of("[[listener]]\naddress = \"127.0.0.1:80\"\nbacklog = 0\n"),
        ["t.toml:3:11: listener[0].backlog: must be between 1 and 2147483647"]
    );
    assert_eq!(
        errors_of("[[listener]]\naddress = \"localhost:80\"\n"),
        [
            "t.toml:2:11: listener[0].address: invalid address `localhost:80`: expected IP:port such as \"0.0.0.0:8080\" or \"[::]:8080\""
        ]
    );
    assert_eq!(
        with_listener(
            "[upstream.app]\nservers = [{ address = \"h:1\", weight = 0 }, { address = \"h:2\", weight = 1001 }]\n"
        ),
        [
            "t.toml:4:40: upstream.app.servers[0].weight: must be between 1 and 1000",
            "t.toml:4:73: upstream.app.servers[1].weight: must be between 1 and 1000",
        ]
    );
    assert_eq!(
        with_listener("[upstream.app]\nservers = [\"h\", \"[::1]:80\", \"h:1\", \"H:1\"]\n"),
        [
            "t.toml:4:12: upstream.app.servers[0]: invalid server address `h`: expected host:port, such as \"127.0.0.1:8080\"",
            "t.toml:4:36: upstream.app.servers[3]: duplicate server `H:1` (also servers[1])",
        ]
    );
    assert_eq!(
        with_listener("[upstream.app]\nservers = []\n"),
        ["t.toml:4:11: upstream.app.servers: an upstream needs at least one server"]
    );
    assert_eq!(
        with_listener("[upstream.app]\nkeepalive = -1\n"),
        [
            "t.toml:3:1: upstream.app.servers: missing required key `servers`",
            "t.toml:4:13: upstream.app.keepalive: must be between 0 and 1000000",
        ]
    );
    assert_eq!(
        with_listener("[limits]\nmax_headers = 0\nmax_request_line = \"0k\"\n"),
        [
            "t.toml:4:15: limits.max_headers: must be between 1 and 65535",
            "t.toml:5:20: limits.max_request_line: must be greater than zero",
        ]
    );
    assert_eq!(
        with_listener("[log]\nformat = \"xml\"\naccess = \"\"\n"),
        [
            "t.toml:4:10: log.format: unknown log format `xml`; expected \"combined\" or \"json\"",
            "t.toml:5:10: log.access: must not be empty",
        ]
    );
}

#[test]
fn bad_durations_and_sizes() {
    assert_eq!(
        with_listener(
            "[timeouts]\nkeepalive = \"10 minutes\"\nrequest_head = \"0s\"\ngrace = -5\n"
        ),
        [
            "t.toml:4:13: timeouts.keepalive: invalid duration `10 minutes`: expected a number with a unit (ms, s, m, h) such as \"500ms\" or \"1h30m\"",
            "t.toml:5:16: timeouts.request_head: must be greater than zero",
            "t.toml:6:9: timeouts.grace: a duration must not be negative",
        ]
    );
    assert_eq!(
        with_listener("[limits]\nmax_body = \"10tb\"\nmax_header_bytes = -1\n"),
        [
            "t.toml:4:12: limits.max_body: invalid size `10tb`: expected bytes or a number with a unit (k, m, g) such as \"8k\" or \"100MiB\"",
            "t.toml:5:20: limits.max_header_bytes: a size must not be negative",
        ]
    );
    let config = ok(&format!("{L}[timeouts]\nkeepalive = 0\ngrace = \"0s\"\n"));
    assert!(config.timeouts.keepalive.is_zero() && config.timeouts.grace.is_zero());
}

#[test]
fn host_patterns_and_paths() {
    assert_eq!(
        with_listener(
            "[[route]]\nhost = [\"ok.com\", \"a*.com\", \"\", \"x.com:80\"]\nrespond = \"x\"\n"
        ),
        [
            "t.toml:4:19: route[0].host[1]: invalid host pattern `a*.com`: `*` is only allowed as a whole first label, as in \"*.example.com\"",
            "t.toml:4:29: route[0].host[2]: invalid host pattern ``: the host name is empty",
            "t.toml:4:33: route[0].host[3]: invalid host pattern `x.com:80`: a host pattern has no port; use `listener` to pick a port",
        ]
    );
    assert_eq!(
        with_listener("[[route]]\nhost = []\nlistener = []\nrespond = \"x\"\n"),
        [
            "t.toml:4:8: route[0].host: must not be empty; leave the key out to match everything",
            "t.toml:5:12: route[0].listener: must not be empty; leave the key out to match everything",
        ]
    );
    assert_eq!(
        with_listener("[[route]]\npath = \"/a b\"\nrespond = \"x\"\n"),
        [
            "t.toml:4:8: route[0].path: path `/a b` must not contain ' '; a route matches the path only"
        ]
    );
}

#[test]
fn route_needs_exactly_one_action() {
    assert_eq!(
        with_listener("[[route]]\npath = \"/\"\n"),
        [
            "t.toml:3:1: route[0]: a route needs an action: set one of `proxy`, `static`, `redirect`, `respond` or `mirrors`"
        ]
    );
    assert_eq!(
        with_listener("[[route]]\nrespond = \"x\"\nstatic = \"/srv\"\nredirect = \"/y\"\n"),
        [
            "t.toml:5:1: route[0].static: a route has exactly one action, but `respond` is set too; split it into two routes",
            "t.toml:6:1: route[0].redirect: a route has exactly one action, but `respond` is set too; split it into two routes",
        ]
    );
    // Inline tables count too.
    assert_eq!(
        errors_of(&format!("route = [{{ path = \"/\" }}]\n{L}")),
        [
            "t.toml:1:10: route[0]: a route needs an action: set one of `proxy`, `static`, `redirect`, `respond` or `mirrors`"
        ]
    );
}

#[test]
fn options_belong_to_their_action() {
    assert_eq!(
        with_listener("[[route]]\nstatic = \"/srv\"\nstatus = 301\npreserve_host = true\n"),
        [
            "t.toml:5:1: route[0].status: `status` only applies to `redirect` or `respond` routes, not `static`",
            "t.toml:6:1: route[0].preserve_host: `preserve_host` only applies to `proxy` routes, not `static`",
        ]
    );
    assert_eq!(
        with_listener("[[route]]\nrespond = \"x\"\nindex = [\"a\"]\nfollow_symlinks = true\n"),
        [
            "t.toml:5:1: route[0].index: `index` only applies to `static` routes, not `respond`",
            "t.toml:6:1: route[0].follow_symlinks: `follow_symlinks` only applies to `static` routes, not `respond`",
        ]
    );
    assert_eq!(
        with_listener("[[route]]\nredirect = \"/x\"\ncontent_type = \"text/html\"\n"),
        [
            "t.toml:5:1: route[0].content_type: `content_type` only applies to `respond` routes, not `redirect`"
        ]
    );
}

#[test]
fn action_values() {
    assert_eq!(
        with_listener(
            "[[route]]\nredirect = \"/x\"\nstatus = 200\n[[route]]\nrespond = \"x\"\nstatus = 100\n[[route]]\nrespond = \"x\"\nstatus = 600\n"
        ),
        [
            "t.toml:5:10: route[0].status: a redirect status must be 301, 302, 303, 307 or 308",
            "t.toml:8:10: route[1].status: must be between 200 and 599",
            "t.toml:11:10: route[2].status: must be between 200 and 599",
        ]
    );
    assert_eq!(
        with_listener(
            "[[route]]\nstatic = \"\"\nindex = [\"a/b.html\"]\n[[route]]\nrespond = \"x\"\ncontent_type = \"text/html\\r\\nX: y\"\n"
        ),
        [
            "t.toml:4:10: route[0].static: must not be empty",
            "t.toml:5:10: route[0].index[0]: index `a/b.html` must be a file name, not a path",
            "t.toml:8:16: route[1].content_type: must not contain control characters",
        ]
    );
    assert_eq!(
        with_listener("[[route]]\nproxy = \"\"\n"),
        ["t.toml:4:9: route[0].proxy: must not be empty"]
    );
    // An empty body is a fine response.
    let config = ok(&format!("{L}[[route]]\nrespond = \"\"\nstatus = 204\n"));
    assert_eq!(config.routes.len(), 1);
}

#[test]
fn upstream_names_are_quoted_in_key_paths() {
    assert_eq!(
        with_listener("[upstream.\"my.app\"]\nservers = [\"h:0\"]\n"),
        [
            "t.toml:4:12: upstream.\"my.app\".servers[0]: invalid server address `h:0`: the port must be 1..=65535"
        ]
    );
    assert_eq!(
        with_listener("[upstream.\"\"]\nservers = [\"h:1\"]\n"),
        ["t.toml:3:11: upstream.\"\": an upstream name must not be empty"]
    );
}

#[test]
fn trusted_proxies_and_the_field_they_name_the_client_in() {
    use crate::model::ForwardedHeader;
    let text = format!(
        "{L}trusted_proxies = [\"10.0.0.0/8\", \"2001:db8::/32\"]\nforwarded_header = \"forwarded\"\n\
         [[route]]\nrespond = \"hi\"\n"
    );
    let config = ok(&text);
    let t = &config.listeners[0].trusted;
    let nets: Vec<String> = t.networks.iter().map(ToString::to_string).collect();
    assert_eq!(nets, ["10.0.0.0/8", "2001:db8::/32"]);
    assert_eq!(t.header, ForwardedHeader::Forwarded);
    // Written out and read back, the same.
    let again = ok(&crate::to_toml(&config));
    assert_eq!(again.listeners[0].trusted, *t);
    // The default field, and no one trusted by default.
    let plain = ok(&format!(
        "{L}trusted_proxies = \"192.0.2.1\"\n[[route]]\nrespond = \"hi\"\n"
    ));
    assert_eq!(
        plain.listeners[0].trusted.header,
        ForwardedHeader::XForwardedFor
    );
    assert!(
        ok(&format!("{L}[[route]]\nrespond = \"hi\"\n")).listeners[0]
            .trusted
            .networks
            .is_empty()
    );
    assert_eq!(
        with_listener("trusted_proxies = [\"10.0.0.0/33\"]\nforwarded_header = \"x-real-ip\"\n"),
        [
            "t.toml:3:20: listener[0].trusted_proxies[0]: invalid network `10.0.0.0/33`: the prefix length must be 0..=32",
            "t.toml:4:20: listener[0].forwarded_header: `x-real-ip`: expected \"x-forwarded-for\" or \"forwarded\"",
        ]
    );
    // A field to read, but no one to believe it from.
    assert_eq!(
        with_listener("forwarded_header = \"forwarded\"\n"),
        ["t.toml:3:20: listener[0].forwarded_header: `forwarded_header` needs `trusted_proxies`"]
    );
}
