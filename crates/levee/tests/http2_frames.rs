//! The HTTP/2 frame-level suite: a raw client (tests/http2/frames.py, on
//! Python's hyperframe and hpack) sends what a well-behaved client never
//! would, over h2c, and each test checks levee's answer against RFC 9113
//! or the flood defence it exercises.

mod support;

use std::process::Command;

use support::{Levee, LeveeSetup, Nginx};

const FRAMES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/http2/frames.py");

/// A Python with the `h2` package (hyperframe, hpack).
fn python() -> &'static str {
    static FOUND: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    FOUND.get_or_init(|| support::python_with("h2, hyperframe, hpack"))
}

/// nginx with a 1 MB file, and levee in front of it on an h2c listener.
fn start(http2: &str) -> (Nginx, Levee) {
    let nginx = Nginx::start_default();
    nginx.put_file("files/big.bin", &vec![b'x'; 1_000_000]);
    let setup = LeveeSetup::new();
    let cfg = setup.proxy_config(&[&nginx.addr()], http2).replacen(
        "[[listener]]\n",
        "[[listener]]\nhttp2 = \"prior-knowledge\"\n",
        1,
    );
    let levee = setup.start(&cfg);
    (nginx, levee)
}

/// Runs one case of frames.py and returns the line it printed.
fn run(levee: &Levee, case: &str) -> String {
    let out = Command::new(python())
        .arg(FRAMES)
        .arg(levee.port.to_string())
        .arg(case)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{case}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Levee still serves a well-formed request on a new connection.
fn still_serves(levee: &Levee) {
    let out = support::curl(&["-s", "--http2-prior-knowledge", &levee.url("/alive")]);
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("hello from"),
        "{out:?}"
    );
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn data_on_a_closed_stream_is_a_stream_closed_error() {
    let (_nginx, levee) = start("");
    let got = run(&levee, "closed_stream_data");
    let (first, then) = got.split_once("; ").expect("two parts");
    assert!(first.starts_with("200 "), "{got}");
    // §5.1: a stream error or a connection error of type STREAM_CLOSED.
    assert!(
        then == "RST 1 STREAM_CLOSED" || then == "GOAWAY STREAM_CLOSED",
        "{got}"
    );
}

#[test]
fn a_body_without_length_is_relayed_chunked() {
    let (nginx, levee) = start("");
    let got = run(&levee, "upload_without_length");
    assert!(got.starts_with("201 "), "{got}");
    let stored = std::fs::read(nginx.root().join("dav/nolength.bin")).expect("stored");
    assert_eq!(stored.len(), 200_000);
    let e = nginx.wait_entries("/dav/nolength.bin", 1);
    assert_eq!(e[0].get("te"), "chunked");
}

#[test]
fn flow_control_levee_waits_for_the_window() {
    let (_nginx, levee) = start("");
    // The client's stream window is 1000 bytes: levee sends that much,
    // waits, and sends exactly the 5000 bytes a WINDOW_UPDATE opens.
    assert_eq!(run(&levee, "window_exhaustion"), "1000 then 5000");
}

#[test]
fn a_stream_whose_window_stays_shut_is_cancelled_and_the_connection_goes_on() {
    // Minimum progress applies to each stream as to an HTTP/1 response: a
    // client that never opens a stream's window loses that stream within
    // about one progress window, not after hours.
    let (_nginx, levee) = start("[protect]\nmin_progress = \"16k\"\nprogress_window = \"2s\"\n");
    let got = run(&levee, "shut_window");
    let (cut, then) = got.split_once("; then ").expect("two parts");
    let secs: u64 = cut
        .strip_prefix("RST 1 CANCEL after ")
        .and_then(|s| s.strip_suffix('s'))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not cancelled: {got}"));
    assert!((1..=6).contains(&secs), "{got}");
    assert!(then.starts_with("200 "), "{got}");
    assert!(!then.ends_with("incomplete"), "{got}");
}

#[test]
fn connect_is_answered_501_not_reset() {
    // A CONNECT is well-formed HTTP/2 (§8.5), so a stream error would be
    // wrong; levee tunnels nothing and says so, as over HTTP/1.1.
    let (_nginx, levee) = start("");
    let got = run(&levee, "connect");
    let (first, then) = got.split_once("; then ").expect("two parts");
    assert!(first.starts_with("501 "), "{got}");
    assert!(then.starts_with("200 "), "{got}");
}

#[test]
fn a_window_update_past_the_maximum_is_a_flow_control_error() {
    let (_nginx, levee) = start("");
    assert_eq!(run(&levee, "window_overflow"), "GOAWAY FLOW_CONTROL_ERROR");
}

#[test]
fn a_bad_hpack_index_ends_the_connection() {
    let (_nginx, levee) = start("");
    // RFC 9113 §4.3 asks for COMPRESSION_ERROR; the h2 crate (0.4) answers
    // every HPACK decoding error with GOAWAY PROTOCOL_ERROR. Either way the
    // connection, whose HPACK state is now unknown, is closed.
    assert_eq!(run(&levee, "hpack_bad_index"), "GOAWAY PROTOCOL_ERROR");
}

#[test]
fn malformed_requests_are_reset_with_protocol_error() {
    let (nginx, levee) = start("");
    for case in ["missing_path", "connection_field"] {
        let got = run(&levee, case);
        assert!(
            got.starts_with("RST 1 PROTOCOL_ERROR; then 200 "),
            "{case}: {got}"
        );
    }
    // The h2 crate's HPACK decoder refuses an upper-case name outright, as
    // a connection error (§5.4.1 lets an endpoint treat a stream error so).
    assert_eq!(run(&levee, "uppercase_name"), "GOAWAY PROTOCOL_ERROR");
    // The well-formed requests after them reached the upstream; none of the malformed did.
    let entries = nginx.wait_entries("/", 2);
    assert!(entries.iter().all(|e| e.get("uri") == "/"), "{entries:?}");
}

#[test]
fn an_idle_connection_gets_goaway_after_keepalive() {
    let (_nginx, levee) = start("[timeouts]\nkeepalive = \"2s\"\n");
    let got = run(&levee, "idle_goaway");
    assert!(got.starts_with("200 "), "{got}");
    let after = got
        .split_once("; GOAWAY NO_ERROR after ")
        .and_then(|(_, t)| t.trim_end_matches('s').parse::<u64>().ok());
    // Not before keepalive, and not much later (a busy machine may add a second).
    assert!(matches!(after, Some(2..=3)), "{got}");
}

#[test]
fn stopping_levee_sends_goaway() {
    use std::io::{BufRead, BufReader};
    let (_nginx, levee) = start("");
    let mut child = Command::new(python())
        .arg(FRAMES)
        .arg(levee.port.to_string())
        .arg("goaway_on_stop")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("served"));
    levee.stop();
    let got = lines.next().and_then(Result::ok).unwrap_or_default();
    let _ = child.wait();
    assert!(got.ends_with("; GOAWAY NO_ERROR"), "{got}");
}

#[test]
fn streams_over_the_limit_are_refused() {
    let (_nginx, levee) = start("[http2]\nmax_concurrent_streams = 4\n");
    assert_eq!(run(&levee, "too_many_streams"), "RST 9 REFUSED_STREAM");
}

#[test]
fn a_header_list_over_the_limit_is_refused() {
    let (nginx, levee) = start("[http2]\nmax_header_list_size = \"4k\"\n");
    let got = run(&levee, "header_list_too_large");
    // The h2 crate answers 431 itself (RFC 6585) and the request goes no further.
    assert!(got.starts_with("431 "), "{got}");
    still_serves(&levee);
    nginx.wait_entries("/alive", 1);
    let entries = nginx.settled_entries();
    assert!(
        entries.iter().all(|e| e.get("uri") == "/alive"),
        "{entries:?}"
    );
}

#[test]
fn rapid_reset_flood_ends_with_goaway() {
    let (_nginx, levee) = start("[http2]\nmax_pending_resets = 20\n");
    assert_eq!(run(&levee, "rapid_reset"), "GOAWAY ENHANCE_YOUR_CALM");
    still_serves(&levee);
}

#[test]
fn continuation_flood_closes_the_connection() {
    let (_nginx, levee) = start("");
    let got = run(&levee, "continuation_flood");
    assert!(got.starts_with("GOAWAY") || got == "CLOSED", "{got}");
    still_serves(&levee);
}

#[test]
fn settings_and_ping_floods_stay_bounded() {
    let (_nginx, levee) = start("");
    let before = rss_kb(levee.pid());
    for case in ["settings_flood", "ping_flood"] {
        let got = run(&levee, case);
        // levee answers each frame, and stops reading while the client
        // does not read its answers: the flood waits in the client's socket,
        // not in levee. (Or the connection is closed.)
        assert!(
            got.starts_with("BLOCKED") || got.starts_with("CLOSED"),
            "{case}: {got}"
        );
    }
    let grown = rss_kb(levee.pid()).saturating_sub(before);
    assert!(grown < 16 * 1024, "RSS grew {grown} kB during the floods");
    still_serves(&levee);
}

#[test]
fn a_static_route_reads_the_body_before_answering() {
    let nginx = Nginx::start_default();
    nginx.put_file("static/a.txt", b"static\n");
    let setup = LeveeSetup::new();
    let route = format!(
        "[[route]]\npath = \"/static/\"\nstatic = \"{}\"\n",
        nginx.root().display()
    );
    let cfg = setup.proxy_config(&[&nginx.addr()], &route).replacen(
        "[[listener]]\n",
        "[[listener]]\nhttp2 = \"prior-knowledge\"\n",
        1,
    );
    let levee = setup.start(&cfg);
    // The body overruns its content-length after a pause: the stream error
    // RFC 9113 §8.1.1 requires, and no answer before it (levee answered
    // 200 at once and dropped what followed).
    assert_eq!(run(&levee, "static_body_overrun"), "RST PROTOCOL_ERROR");
    // A well-formed body is read and dropped, then the file is served.
    assert_eq!(run(&levee, "static_with_body"), "200 7");
    still_serves(&levee);
}

#[test]
fn an_http2_only_listener_answers_a_bad_preface_with_goaway() {
    let nginx = Nginx::start_default();
    let setup = LeveeSetup::new();
    let cfg = setup.proxy_config(&[&nginx.addr()], "").replacen(
        "[[listener]]\n",
        "[[listener]]\nhttp2 = \"only\"\n",
        1,
    );
    let levee = setup.start(&cfg);
    // The empty SETTINGS of the server's preface, then GOAWAY with last
    // stream 0 and PROTOCOL_ERROR; not an HTTP/1.1 answer.
    let goaway: &[u8] = &[
        0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    ];
    for opening in [
        &b"PRI * HTTP/2.0\r\n\r\nSX\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    ] {
        let (got, closed) = support::raw_eof(levee.port, opening);
        assert_eq!(got, goaway, "{}", String::from_utf8_lossy(&got));
        assert!(closed);
    }
    assert!(nginx.settled_entries().is_empty(), "nothing reached nginx");
    still_serves(&levee);
}

#[test]
fn pseudo_fields_in_trailers_are_dropped_by_the_h2_crate() {
    // Pins a deviation of the h2 crate (docs/architecture.md): RFC 9113
    // §8.1 calls such trailers malformed (RST_STREAM PROTOCOL_ERROR), but
    // h2 drops their pseudo-fields before levee sees them. What matters
    // here: nothing of them reaches the upstream. Should h2 start
    // resetting these streams, this test fails and the docs must say so.
    let (nginx, levee) = start("");
    let got = run(&levee, "pseudo_trailers");
    assert!(
        got.starts_with("HEADERS 201") || got.starts_with("HEADERS 204"),
        "{got}"
    );
    let uris: Vec<String> = nginx
        .settled_entries()
        .iter()
        .map(|e| e.get("uri"))
        .collect();
    assert_eq!(uris, ["/dav/t.txt"]);
}
