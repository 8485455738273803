//! The dashboard's fleet view in a real browser (headless Chromium driven
//! by Playwright, `dashboard/browse.py`, scenario `fleet`): three members
//! (fleet/common.rs) on a real redis-server, each proxying to two real
//! nginx servers. The page served by one member lists the three members
//! with their health and load, and a drain from its upstream table,
//! fleet-wide, reaches the other members: no new request reaches the
//! drained server through any of them.

#[path = "fleet/common.rs"]
mod common;
mod support;

use std::path::PathBuf;
use std::time::Duration;

use common::{Member, ping_until_heard, promo};
use support::{Nginx, Redis, browse_py, poll};

#[test]
fn the_fleet_view_lists_members_and_drains_fleet_wide() {
    let redis = Redis::start();
    let nginx = [Nginx::start_default(), Nginx::start_default()];
    let servers: Vec<String> = nginx.iter().map(Nginx::addr).collect();
    let fleet = format!(
        "name = \"t\"\nredis = \"{}\"\ntimeout = \"500ms\"",
        redis.url()
    );
    let tables = format!(
        "{}\n[[route]]\npath = \"/app/\"\nproxy = \"app\"\n\n[upstream.app]\nservers = [\"{}\", \"{}\"]\n",
        promo("10/s", 10),
        servers[0],
        servers[1]
    );
    // The admin listeners are open (loopback, no token): the page opens
    // without a login, which tests/dashboard.rs covers.
    let members: Vec<Member> = (0..3).map(|n| Member::start(n, &fleet, &tables)).collect();
    for m in &members {
        assert!(
            m.wait_redis_up(Duration::from_secs(15)),
            "{}",
            m.levee.stderr()
        );
    }
    assert!(ping_until_heard(&members[0], &members, "before-the-page"));
    let three = poll(Duration::from_secs(10), || {
        members[0]
            .ctl_fleet()
            .contains("3 live member(s)")
            .then_some(())
    });
    assert!(three.is_some());
    let logs: Vec<PathBuf> = nginx
        .iter()
        .map(|n| n.root().join("../logs/access.log"))
        .collect();
    let proxies: Vec<String> = members
        .iter()
        .map(|m| format!("http://{}:{}", m.ip, m.port))
        .collect();
    let args = serde_json::json!({
        "scenario": "fleet",
        "levee_port": members[0].port,
        "admin_port": members[0].admin,
        "servers": servers,
        "logs": logs,
        "proxies": proxies,
        "members": ["m0", "m1", "m2"],
        "shots": PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/dashboard-screenshots"),
    });
    let (passed, text) = browse_py(&args);
    assert!(
        passed,
        "browse.py fleet failed:\n{text}\nm0 stderr:\n{}",
        members[0].levee.stderr()
    );
}
