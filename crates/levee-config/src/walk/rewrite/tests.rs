//! The rewrite keys: what they build, and each error with its place.

use crate::model::{Part, RewriteFlag};
use crate::tests::{errors_of, ok};

const HEAD: &str =
    "[[listener]]\naddress = \"127.0.0.1:80\"\n[upstream.app]\nservers = [\"127.0.0.1:81\"]\n";

#[test]
fn rules_and_prefixes_are_read_and_survive_a_round_trip() {
    let config = ok(&format!(
        r#"{HEAD}[limits]
max_rewrites = 3
[[route]]
path = "/api/"
proxy = "app"
strip_prefix = "/api"
add_prefix = "/v2"
[[route.rewrite]]
match = '^/api/old/(\d+)$'
to = "/api/new/{{1}}?x=$1"
[[route.rewrite]]
match = "^/api/gone/"
to = "https://example.com/"
flag = "redirect"
status = 308
[[route.rewrite]]
match = "^/api/here"
to = "/api/there"
flag = "break"
"#
    ));
    assert_eq!(config.limits.max_rewrites, 3);
    let rw = &config.routes[0].rewrite;
    assert_eq!(rw.strip_prefix.as_deref(), Some("/api"));
    assert_eq!(rw.add_prefix.as_deref(), Some("/v2"));
    let flags: Vec<_> = rw.rules.iter().map(|r| r.flag).collect();
    assert_eq!(
        flags,
        [
            RewriteFlag::Last,
            RewriteFlag::Redirect(308),
            RewriteFlag::Break
        ]
    );
    assert_eq!(
        rw.rules[0].to.parts,
        [
            Part::Literal("/api/new/".into()),
            Part::Capture(1),
            Part::Literal("?x=".into()),
            Part::Capture(1),
        ]
    );
    // What `levee config dump` writes reads back the same.
    let again = ok(&crate::to_toml(&config));
    assert_eq!(again.routes, config.routes);
    assert_eq!(again.limits, config.limits);
    assert!(crate::validate(&config).is_ok());
}

#[test]
fn each_error_names_its_place() {
    let errors = errors_of(&format!(
        r#"{HEAD}[[route]]
proxy = "app"
strip_prefix = "api"
[[route.rewrite]]
match = "^/(a"
to = "/b"
[[route.rewrite]]
match = "^/(a)$"
to = "/b/$2"
[[route.rewrite]]
match = "^/a$"
to = "https://x/"
[[route.rewrite]]
match = "^/a$"
to = "/b"
status = 301
[[route.rewrite]]
match = "^/a$"
to = "/b%zz"
flag = "redirect"
status = 200
[[route.rewrite]]
match = "^/a$"
to = "/b"
flag = "sometimes"
"#
    ));
    assert_eq!(
        errors,
        [
            "t.toml:7:16: route[0].strip_prefix: prefix `api` must start with `/`",
            "t.toml:9:9: route[0].rewrite[0].match: not a valid regex: regex parse error:\n    ^/(a\n      ^\nerror: unclosed group",
            "t.toml:13:6: route[0].rewrite[1].to: `$2` refers to group 2, but `match` has 1 group",
            "t.toml:16:6: route[0].rewrite[2].to: `https://x/`: expected a path starting with `/` (only a redirect may name a URL)",
            "t.toml:20:10: route[0].rewrite[3].status: `status` only applies with `flag = \"redirect\"` or `\"permanent\"`",
            "t.toml:25:10: route[0].rewrite[4].status: a redirect status must be 301, 302, 303, 307 or 308",
            "t.toml:29:8: route[0].rewrite[5].flag: `sometimes`: expected \"last\", \"break\", \"redirect\" or \"permanent\"",
        ]
    );
    let errors = errors_of(&format!(
        "{HEAD}[[route]]\nproxy = \"app\"\n[[route.rewrite]]\nmatch = \"^/a$\"\nto = \"/b%zz\"\n"
    ));
    assert_eq!(
        errors,
        ["t.toml:9:6: route[0].rewrite[0].to: a `%` must start an escape such as `%20`"]
    );
    let errors = errors_of(&format!(
        "{HEAD}[[route]]\nproxy = \"app\"\nforward_path = \"original\"\nstrip_prefix = \"/api\"\n"
    ));
    assert_eq!(
        errors,
        [
            "t.toml:7:16: route[0].forward_path: a route that rewrites its path forwards it normalised; `\"original\"` cannot apply"
        ]
    );
    let errors = errors_of(&format!("{HEAD}[limits]\nmax_rewrites = 5000\n"));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("t.toml:6:16: limits.max_rewrites:"),
        "{errors:?}"
    );
}
