//! The dashboard's routes through the whole gate: which requests need no
//! credentials, the headers of the page, the history and the live view.

use std::sync::Arc;

use levee_config::Admin as AdminConfig;
use levee_http::{Shared, Site};

use super::*;
use crate::Access;

fn admin(token: bool) -> Arc<Admin> {
    let config = levee_config::builtin_proxy(
        "127.0.0.1:8080".parse().expect("literal"),
        vec!["127.0.0.1:9001".into()],
    );
    let site = Site::build(&config).expect("site");
    let rules = AdminConfig::on("127.0.0.1:9090".parse().expect("literal"));
    let mut access = Access::load(&rules, std::path::Path::new("x")).expect("access");
    if token {
        access.token = Some(crate::access::token("0123456789abcdef0123").expect("token"));
    }
    Admin::new(Shared::new(site), access, None)
}

fn get(path: &str) -> Request {
    Request {
        method: "GET".into(),
        path: path.into(),
        target: path.into(),
        host: Some("127.0.0.1:9090".into()),
        accept_encoding: Some("gzip".into()),
        local: Some("127.0.0.1:9090".parse().expect("addr")),
        ..Request::default()
    }
}

#[tokio::test]
async fn the_page_and_assets_need_no_credentials_but_data_does() {
    let a = admin(true);
    let page = a.respond(&get("/")).await;
    assert_eq!(page.status, 200);
    assert!(
        page.headers
            .iter()
            .any(|(n, v)| *n == "Content-Encoding" && v == "gzip")
    );
    let app = a
        .respond(&get(&format!("/assets/{}/app.js", assets::BUNDLE)))
        .await;
    assert_eq!(app.status, 200);
    assert!(
        app.headers
            .iter()
            .any(|(n, v)| *n == "Cache-Control" && v.contains("immutable"))
    );
    let stale = a.respond(&get("/assets/0000/app.js")).await;
    assert_eq!(stale.status, 404);
    for path in [
        "/api/dashboard/history",
        "/api/dashboard/live",
        "/api/dashboard/events",
        "/api/dashboard/config",
        "/upstreams",
        "/bans",
    ] {
        assert_eq!(a.respond(&get(path)).await.status, 401, "{path}");
    }
    // The exemption is for reading the page only.
    let mut post = get("/");
    post.method = "POST".into();
    post.content_type = Some("application/json".into());
    assert_eq!(a.respond(&post).await.status, 401);
}

#[test]
fn history_and_live_view_from_ticks() {
    let dash = Dash::default();
    let mut s = Sample {
        at_ms: 1_000_000,
        ..Sample::default()
    };
    s.routes.push(sample::RouteSample {
        name: "<script>x</script>/".into(),
        ..Default::default()
    });
    dash.tick(s.clone());
    s.at_ms += 1000;
    s.routes[0].responses[1] = 50;
    s.routes[0].latency = [0, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50];
    dash.tick(s);
    let live: serde_json::Value = serde_json::from_str(&dash.live.borrow().clone()).expect("JSON");
    assert_eq!(live["point"]["rps_2xx"], 50.0);
    assert_eq!(live["routes"][0]["name"], "<script>x</script>/");
    assert_eq!(live["routes"][0]["rps"], 50.0);
    assert!(
        live["routes"][0]["latency_ms"]["p50"]
            .as_f64()
            .is_some_and(|p| p > 1.0 && p <= 5.0)
    );
    assert_eq!(lock(&dash.history).seconds.len(), 1);
    assert!(dash.history_memory() > 0);
}
