//! The API over a real site, without sockets.

use std::sync::Arc;

use levee_http::{Shared, Site};
use serde_json::Value;

use super::handle;

fn shared() -> Arc<Shared> {
    let config = levee_config::builtin_proxy(
        "127.0.0.1:8080".parse().expect("literal"),
        vec!["127.0.0.1:9001".into(), "127.0.0.1:9002".into()],
    );
    Shared::new(Site::build(&config).expect("site"))
}

fn json(reply: &crate::server::Reply) -> Value {
    serde_json::from_slice(&reply.body).expect("JSON body")
}

#[test]
fn lists_upstreams_and_servers() {
    let shared = shared();
    let r = handle(&shared, "GET", "/upstreams", b"");
    assert_eq!(r.status, 200);
    let v = json(&r);
    let servers = &v["upstreams"][0]["servers"];
    assert_eq!(v["upstreams"][0]["name"], "backend");
    assert_eq!(servers[0]["address"], "127.0.0.1:9001");
    assert_eq!(servers[0]["state"], "up");
    assert_eq!(servers[1]["weight"], 1);
}

#[test]
fn drain_disable_enable_and_weight_act_on_the_shared_state() {
    let shared = shared();
    let r = handle(
        &shared,
        "POST",
        "/upstreams/backend/servers/127.0.0.1:9001/drain",
        b"",
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(json(&r)["servers"][0]["state"], "draining");
    let site = shared.site.load_full();
    let group = &site.upstreams["backend"];
    assert_eq!(
        group.members().list[0].state.admin(),
        levee_upstream::AdminState::Draining
    );
    let r = handle(
        &shared,
        "POST",
        "/upstreams/backend/servers/127.0.0.1:9001/disable",
        b"",
    );
    assert_eq!(json(&r)["servers"][0]["state"], "disabled");
    let r = handle(
        &shared,
        "POST",
        "/upstreams/backend/servers/127.0.0.1%3A9001/enable",
        b"",
    );
    assert_eq!(json(&r)["servers"][0]["state"], "up");
    let r = handle(
        &shared,
        "POST",
        "/upstreams/backend/servers/127.0.0.1:9002/weight",
        br#"{"weight": 7}"#,
    );
    assert_eq!(json(&r)["servers"][0]["weight_override"], 7);
    assert_eq!(json(&r)["servers"][0]["effective_weight"], 7.0);
    let r = handle(
        &shared,
        "POST",
        "/upstreams/backend/servers/127.0.0.1:9002/weight",
        br#"{"weight": 0}"#,
    );
    assert_eq!(r.status, 400);
}

#[test]
fn unknown_things_are_404_and_wrong_methods_405() {
    let shared = shared();
    assert_eq!(handle(&shared, "GET", "/upstreams/nope", b"").status, 404);
    assert_eq!(
        handle(
            &shared,
            "POST",
            "/upstreams/backend/servers/1.2.3.4:5/drain",
            b""
        )
        .status,
        404
    );
    assert_eq!(
        handle(
            &shared,
            "POST",
            "/upstreams/backend/servers/127.0.0.1:9001/explode",
            b""
        )
        .status,
        404
    );
    assert_eq!(handle(&shared, "DELETE", "/upstreams", b"").status, 405);
    assert_eq!(handle(&shared, "GET", "/nothing", b"").status, 404);
}

#[test]
fn metrics_have_help_type_and_series() {
    let shared = shared();
    levee_http::listener::stats::count_request("127.0.0.1:8080".parse().expect("literal"));
    let r = handle(&shared, "GET", "/metrics", b"");
    assert_eq!(r.status, 200);
    let text = String::from_utf8(r.body).expect("utf-8");
    for name in [
        "levee_upstream_requests_total",
        "levee_upstream_responses_total",
        "levee_upstream_errors_total",
        "levee_upstream_response_seconds",
        "levee_upstream_server_up",
        "levee_upstream_active_requests",
        "levee_upstream_idle_connections",
        "levee_listener_requests_total",
    ] {
        assert!(text.contains(&format!("# TYPE {name} ")), "no {name}");
    }
    assert!(
        text.contains("levee_upstream_server_up{upstream=\"backend\",server=\"127.0.0.1:9001\"} 1")
    );
    assert!(text.contains("levee_upstream_response_seconds_bucket{upstream=\"backend\",server=\"127.0.0.1:9002\",le=\"+Inf\"} 0"));
    assert!(text.contains("levee_listener_requests_total{listener=\"127.0.0.1:8080\"} "));
    // Every sample line is `name{labels} value` with a numeric value.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let value = line.rsplit(' ').next().expect("a value");
        assert!(value.parse::<f64>().is_ok(), "bad sample: {line}");
    }
}

#[test]
fn mail_close_asks_the_users_sessions_and_wants_post() {
    let shared = shared();
    let session = levee_mail::kick::register(b"api-test-user");
    let r = handle(&shared, "POST", "/mail/users/api-test-user/close", b"");
    assert_eq!(r.status, 200);
    assert_eq!(json(&r)["closing"], 1);
    assert!(session.requested());
    let r = handle(&shared, "GET", "/mail/users/api-test-user/close", b"");
    assert_eq!(r.status, 405);
}
