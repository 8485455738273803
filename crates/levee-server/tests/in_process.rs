//! levee run inside the test's own process: the test binds 127.0.0.1:0
//! itself, hands the socket to `levee_server::run` with a shutdown future,
//! makes a request, and stops it. No peer is needed: the route answers
//! itself.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

#[test]
fn run_serves_a_socket_the_caller_bound_until_shutdown() {
    let socket = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = socket.local_addr().expect("addr");
    let text = format!(
        "workers = 2\n[log]\naccess = \"off\"\n[[listener]]\naddress = \"{addr}\"\n\
         [[route]]\nrespond = \"in-process\"\n"
    );
    let config = levee_config::parse(&text, Path::new("in-process.toml")).expect("config");
    let mut listeners = levee_server::Listeners::new();
    listeners.add(addr, socket);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        levee_server::run(listeners, config, async {
            let _ = stopped.await;
        })
    });

    // The socket listens already: a request made now waits in its queue.
    let mut conn = TcpStream::connect(addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    conn.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut response = String::new();
    conn.read_to_string(&mut response).expect("read");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("in-process"), "{response}");

    stop.send(()).expect("levee still runs");
    let result = server.join().expect("levee's thread");
    assert!(result.is_ok(), "{result:?}");
    // Stopped: the workers stopped accepting and the socket is closed.
    let refused = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        TcpStream::connect(addr).is_err()
    });
    assert!(refused, "{addr} still accepts after the stop");
}
