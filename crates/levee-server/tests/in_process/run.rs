//! `levee_server::run` serves a socket its caller bound, until the
//! shutdown future resolves. No peer is needed: the route answers itself.

use std::net::TcpStream;

use crate::support::{Levee, eventually, get};

#[test]
fn run_serves_a_socket_the_caller_bound_until_shutdown() {
    let levee = Levee::start("", "[[route]]\nrespond = \"in-process\"\n");
    let addr = levee.addr;

    let response = get(addr, "/");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.text(), "in-process");

    let result = levee.stop();
    assert!(result.is_ok(), "{result:?}");
    // Stopped: the workers stopped accepting and the socket is closed.
    assert!(
        eventually(|| TcpStream::connect(addr).is_err()),
        "{addr} still accepts after the stop"
    );
}
