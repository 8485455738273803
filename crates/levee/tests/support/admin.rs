//! The admin API of a levee under test: raw JSON requests and metric lookups.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One request to the admin listener on `port`, as `levee ctl` sends it
/// (its own address as `Host`, a JSON content type): status and body.
pub fn admin_request(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    let (status, _, body) = admin_raw(
        port,
        &format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    (status, body)
}

/// Sends `request` as it is to the admin listener on `port`: the status,
/// the response head and the body.
pub fn admin_raw(port: u16, request: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to admin");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    s.write_all(request.as_bytes())
        .expect("write admin request");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read admin response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a response head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    (status, head.to_string(), body.to_string())
}

/// The JSON of upstream `name`'s server at `addr` (`ip:port`).
pub fn server_json(port: u16, upstream: &str, addr: &str) -> serde_json::Value {
    let (status, body) = admin_request(port, "GET", &format!("/upstreams/{upstream}"), "");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    v["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .find(|s| s["address"] == addr)
        .cloned()
        .unwrap_or_else(|| panic!("no server {addr} in {body}"))
}

/// The value of the sample `series` (name with labels, exactly) in `/metrics`.
pub fn metric(port: u16, series: &str) -> Option<f64> {
    let (_, text) = admin_request(port, "GET", "/metrics", "");
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}
