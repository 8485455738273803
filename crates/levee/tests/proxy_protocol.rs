//! The PROXY protocol on a listener: taken from trusted sources only, its
//! client address used for X-Forwarded-For and the access log.

mod support;

use support::{LeveeSetup, Nginx, curl, raw};

/// levee in front of `nginx`, trusting `trusted` to send PROXY headers.
fn start(nginx: &Nginx, trusted: &str) -> support::Levee {
    let setup = LeveeSetup::new();
    let cfg = setup.proxy_config(&[&nginx.addr()], "").replacen(
        "\n\n[[route]]",
        &format!("\nproxy_protocol = {trusted}\n\n[[route]]"),
        1,
    );
    setup.start(&cfg)
}

fn v2_inet(src: [u8; 4], port: u16) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0, 12]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&[127, 0, 0, 1]);
    h.extend_from_slice(&port.to_be_bytes());
    h.extend_from_slice(&80u16.to_be_bytes());
    h
}

#[test]
fn curl_haproxy_protocol_from_a_trusted_source() {
    let nginx = Nginx::start_default();
    let levee = start(&nginx, "[\"127.0.0.1\", \"10.0.0.0/8\"]");
    let out = curl(&["--haproxy-protocol", &levee.url("/pp-curl")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("hello from"));
    let e = nginx.wait_entries("/pp-curl", 1);
    assert_eq!(e[0].get("xff"), "127.0.0.1");
}

#[test]
fn the_client_address_comes_from_the_header_v1_and_v2() {
    let nginx = Nginx::start_default();
    let levee = start(&nginx, "\"127.0.0.0/8\"");
    let mut v1 = b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 80\r\n".to_vec();
    v1.extend_from_slice(b"GET /pp-v1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let got = raw(levee.port, &v1);
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );

    let mut v2 = v2_inet([198, 51, 100, 9], 40001);
    v2.extend_from_slice(b"GET /pp-v2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let got = raw(levee.port, &v2);
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );

    assert_eq!(nginx.wait_entries("/pp-v1", 1)[0].get("xff"), "203.0.113.7");
    assert_eq!(
        nginx.wait_entries("/pp-v2", 1)[0].get("xff"),
        "198.51.100.9"
    );
    let line = levee.wait_stdout_line(&["/pp-v1"]);
    assert!(line.starts_with("203.0.113.7 "), "{line}");
}

#[test]
fn a_header_from_an_untrusted_source_is_refused() {
    let nginx = Nginx::start_default();
    let levee = start(&nginx, "\"10.0.0.0/8\"");
    let status = |args: &[&str]| {
        let mut all = vec!["-o", "/dev/null", "-w", "%{http_code}"];
        all.extend_from_slice(args);
        String::from_utf8_lossy(&curl(&all).stdout).into_owned()
    };
    assert_eq!(
        status(&["--haproxy-protocol", &levee.url("/pp-untrusted")]),
        "400"
    );
    // Without the header the same client is served as usual.
    assert_eq!(status(&[&levee.url("/plain")]), "200");
    assert!(!nginx.access_log().contains("/pp-untrusted"));
}

#[test]
fn a_trusted_source_must_send_a_valid_header() {
    let nginx = Nginx::start_default();
    let levee = start(&nginx, "\"127.0.0.1\"");
    for bytes in [
        &b"GET /no-header HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"[..],
        b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 80\r\nGET / HTTP/1.1\r\n\r\n",
    ] {
        let got = raw(levee.port, bytes);
        assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    }
    assert!(!nginx.access_log().contains("/no-header"));
}

#[test]
fn reload_changes_the_trusted_sources_of_an_open_listener() {
    let nginx = Nginx::start_default();
    let levee = start(&nginx, "\"10.0.0.0/8\"");
    let status = || {
        let out = curl(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--haproxy-protocol",
            &levee.url("/pp-reload"),
        ]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(status(), "400");
    let config = std::fs::read_to_string(levee.config_path()).expect("config");
    levee.write_config(&config.replace("\"10.0.0.0/8\"", "\"127.0.0.1\""));
    levee.reload();
    let trusted = support::poll(std::time::Duration::from_secs(5), || {
        (status() == "200").then_some(())
    });
    assert!(trusted.is_some(), "{}", levee.stderr());
}

#[test]
fn connection_limits_count_the_clients_behind_the_load_balancer() {
    let nginx = Nginx::start_default();
    let levee = start(&nginx, "\"127.0.0.1\"\nmax_connections_per_ip = 1");
    let request = |client: &str| {
        let mut bytes = format!("PROXY TCP4 {client} 127.0.0.1 40000 80\r\n").into_bytes();
        bytes.extend_from_slice(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        bytes
    };
    // Two clients through one load balancer address: one connection each.
    let mut first = support::RawConn::connect(levee.port);
    first.send(&request("203.0.113.1"));
    assert_eq!(first.read_response("GET").status, 200);
    let mut second = support::RawConn::connect(levee.port);
    second.send(&request("203.0.113.2"));
    assert_eq!(second.read_response("GET").status, 200);
    // A second connection of the first client is over its limit.
    let mut again = support::RawConn::connect(levee.port);
    again.send(&request("203.0.113.1"));
    assert!(again.closed_within(std::time::Duration::from_secs(3)));
    // The first client's own connection is still served.
    first.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(first.read_response("GET").status, 200);
}

/// An nginx whose second server takes a PROXY header on the returned port
/// and answers with the client address it carried.
fn nginx_taking_proxy_protocol() -> (Nginx, u16) {
    let port = support::free_port();
    // The fixture's server block is closed early to open one more.
    let body = format!(
        "location / {{ return 200 \"plain\\n\"; }} }}\n\
         server {{ listen 127.0.0.1:{port} proxy_protocol;\n\
         location / {{ return 200 \"pp $proxy_protocol_addr\\n\"; }}"
    );
    let nginx = Nginx::start(&body);
    let open = support::poll(std::time::Duration::from_secs(5), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    assert!(open.is_some(), "nginx proxy_protocol port");
    (nginx, port)
}

#[test]
fn proxy_protocol_sent_to_upstream_carries_the_client_address() {
    for version in ["v1", "v2"] {
        let (_nginx, port) = nginx_taking_proxy_protocol();
        let setup = LeveeSetup::new();
        let cfg = setup
            .proxy_config(&[&format!("127.0.0.1:{port}")], "")
            .replacen(
                "\n\n[[route]]",
                "\nproxy_protocol = \"127.0.0.1\"\n\n[[route]]",
                1,
            )
            .replacen(
                "servers = [",
                &format!("proxy_protocol = \"{version}\"\nservers = ["),
                1,
            );
        let levee = setup.start(&cfg);
        // The client address comes in on a PROXY header and goes out on one.
        for client in ["203.0.113.9", "198.51.100.4"] {
            let mut req = format!("PROXY TCP4 {client} 127.0.0.1 4000 80\r\n").into_bytes();
            req.extend_from_slice(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let got = String::from_utf8_lossy(&raw(levee.port, &req)).into_owned();
            assert!(got.starts_with("HTTP/1.1 200"), "{version}: {got}");
            assert!(got.ends_with(&format!("pp {client}\n")), "{version}: {got}");
        }
    }
}
