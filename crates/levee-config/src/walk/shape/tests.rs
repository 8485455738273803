//! Header rules and `[http]`: parsed values, round trips and errors.

use crate::model::*;
use crate::tests::{errors_of, ok};
use crate::{to_toml, validate};

const L: &str = "[[listener]]\naddress = \"127.0.0.1:80\"\n[upstream.app]\nservers = [\"a:1\"]\n";

#[test]
fn rules_parse_with_variables_and_round_trip() {
    let text = format!(
        r#"{L}[http]
hide_upstream_server = false
request_id_header = "X-Trace"
request_id_trust = "any"

[[route]]
proxy = "app"
hide_upstream_server = true
request_headers = {{ set = {{ "X-Client" = "{{client}} {{scheme}}" }}, remove = "X-Debug" }}
response_headers = {{ add = {{ "X-Up" = "{{upstream}} {{{{x}}}}" }}, always = true }}
"#
    );
    let config = ok(&text);
    let shape = &config.routes[0].shape;
    assert_eq!(shape.request.set[0].name, "X-Client");
    assert_eq!(
        shape.request.set[0].value.pieces,
        [
            Piece::Var(Var::Client),
            Piece::Literal(" ".into()),
            Piece::Var(Var::Scheme)
        ]
    );
    assert_eq!(shape.request.remove, ["X-Debug"]);
    assert_eq!(
        shape.response.add[0].value.pieces,
        [Piece::Var(Var::Upstream), Piece::Literal(" {x}".into())]
    );
    assert!(shape.always);
    assert_eq!(shape.hide_upstream_server, Some(true));
    assert!(!config.http.hide_upstream_server);
    assert_eq!(config.http.request_id_header, "X-Trace");
    assert_eq!(config.http.request_id_trust, RequestIdTrust::Any);
    validate(&config).expect("round trip");
    assert!(to_toml(&config).contains("request_headers"));
}

#[test]
fn defaults_hide_the_upstream_server_and_give_ids() {
    let config = ok(L);
    assert_eq!(config.http, Http::default());
    assert!(config.http.hide_upstream_server && config.http.request_id);
    assert_eq!(config.http.request_id_header, "X-Request-Id");
}

#[test]
fn framing_and_hop_by_hop_fields_and_injections_are_refused_where_written() {
    let text = format!(
        r#"{L}[[route]]
proxy = "app"
request_headers = {{ set = {{ "Content-Length" = "5", "Host" = "x" }}, remove = ["Transfer-Encoding"] }}
response_headers = {{ set = {{ "Bad Name" = "1", "X-A" = "a\r\nInjected: 1", "X-B" = "{{nope}}" }} }}
"#
    );
    let errors = errors_of(&text);
    let want = [
        "t.toml:7:29: route[0].request_headers.set.Content-Length: `Content-Length` cannot be set by a rule: levee writes the connection and framing fields itself",
        "route[0].request_headers.set.Host: `Host` cannot be set by a rule: `Host` is chosen by `preserve_host`",
        "`Transfer-Encoding` cannot be set by a rule",
        "route[0].response_headers.set.\"Bad Name\": `Bad Name` is not a valid field name",
        "route[0].response_headers.set.X-A: a field value must not contain control characters",
        "route[0].response_headers.set.X-B: unknown variable `{nope}`",
    ];
    assert_eq!(errors.len(), want.len(), "{errors:#?}");
    for (e, w) in errors.iter().zip(want) {
        assert!(e.contains(w), "{e}\n  should contain\n{w}");
    }
}

#[test]
fn own_answers_need_always_and_request_rules_need_a_proxy() {
    let errors = errors_of(&format!(
        "{L}[[route]]\nrespond = \"hi\"\nresponse_headers = {{ add = {{ X-A = \"1\" }} }}\n\
         request_headers = {{ add = {{ X-B = \"1\" }} }}\n"
    ));
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].contains("only with `always = true`"),
        "{errors:#?}"
    );
    assert!(
        errors[1].contains("only applies to `proxy` routes"),
        "{errors:#?}"
    );
    ok(&format!(
        "{L}[[route]]\nrespond = \"hi\"\nresponse_headers = {{ add = {{ X-A = \"1\" }}, always = true }}\n"
    ));
}

#[test]
fn sticky_cookie_attributes_are_checked() {
    let errors = errors_of(
        "[[listener]]\naddress = \"127.0.0.1:80\"\n[upstream.a]\nservers = [\"a:1\"]\n\
         balance = \"sticky\"\nsticky_cookie_same_site = \"None\"\n\
         [upstream.b]\nservers = [\"b:1\"]\nsticky_cookie_max_age = \"1h\"\n\
         [upstream.c]\nservers = [\"c:1\"]\nbalance = \"sticky\"\nsticky_cookie_same_site = \"lax\"\n",
    );
    let want = [
        "t.toml:6:27: upstream.a.sticky_cookie_same_site: `SameSite=None` needs `sticky_cookie_secure = true`",
        "t.toml:9:25: upstream.b.sticky_cookie_max_age: `sticky_cookie_max_age` is only allowed with balance = \"sticky\"",
        "t.toml:13:27: upstream.c.sticky_cookie_same_site: `lax`: expected \"Strict\", \"Lax\" or \"None\"",
    ];
    assert_eq!(errors.len(), want.len(), "{errors:#?}");
    for (e, w) in errors.iter().zip(want) {
        assert!(e.contains(w), "{e}\n  should contain\n{w}");
    }
}

#[test]
fn error_pages_parse_round_trip_and_are_checked() {
    let config = ok(&format!(
        r#"{L}[http.error_pages.502]
file = "/srv/502.html"
json = '{{"error": "bad gateway"}}'

[[route]]
proxy = "app"
intercept_errors = true
error_pages = {{ 404 = {{ body = "<h1>gone</h1>", content_type = "text/html" }} }}
"#
    ));
    let site = &config.http.error_pages[0];
    assert_eq!(site.status, 502);
    assert_eq!(site.body, PageSource::File("/srv/502.html".into()));
    assert_eq!(
        site.json,
        Some(PageSource::Inline("{\"error\": \"bad gateway\"}".into()))
    );
    let route = &config.routes[0].shape;
    assert!(route.intercept_errors);
    assert_eq!(
        route.error_pages[0].content_type.as_deref(),
        Some("text/html")
    );
    validate(&config).expect("round trip");

    let errors = errors_of(&format!(
        "{L}[http.error_pages.302]\nbody = \"x\"\n[http.error_pages.500]\nfile = \"/a\"\nbody = \"b\"\n\
         [http.error_pages.503]\ncontent_type = \"text/plain\"\n\
         [[route]]\nrespond = \"x\"\nintercept_errors = true\n"
    ));
    let want = [
        "http.error_pages.302: `302` is not an error status (400 to 599)",
        "http.error_pages.500.body: set `file` or `body`, not both",
        "http.error_pages.503: an error page needs `file` or `body`",
        "route[0].intercept_errors: `intercept_errors` only applies to `proxy` routes",
    ];
    assert_eq!(errors.len(), want.len(), "{errors:#?}");
    for (e, w) in errors.iter().zip(want) {
        assert!(e.contains(w), "{e}\n  should contain\n{w}");
    }
}
