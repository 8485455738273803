//! The HTTP/2 side of the fakes: h2c with prior knowledge on the `h2`
//! crate's server, each stream answered by its scripted [`Reply`].

use std::sync::Arc;

use bytes::Bytes;
use h2::Reason;
use h2::server::SendResponse;
use tokio::net::TcpStream;

use super::{End, Reply, Seen, Shared, Step};

/// One connection: streams accepted in turn, each answered on a task.
pub(super) async fn serve(conn: TcpStream, shared: Arc<Shared>) {
    let Ok(mut h2) = h2::server::handshake(conn).await else {
        return;
    };
    // Accepting drives the connection: its frames go out while it waits.
    while let Some(Ok((req, respond))) = h2.accept().await {
        let seen = Seen {
            method: req.method().to_string(),
            path: req.uri().path().to_string(),
            headers: req
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
        };
        let reply = shared.next(seen);
        if reply.end == End::Close && reply.steps.is_empty() {
            h2.graceful_shutdown();
            continue;
        }
        tokio::spawn(answer(reply, respond, shared.clone()));
    }
}

async fn answer(reply: Reply, mut respond: SendResponse<Bytes>, shared: Arc<Shared>) {
    let mut body = None;
    for step in reply.steps {
        match step {
            Step::Head(status, fields) => {
                let mut head = http::Response::builder().status(status);
                for (k, v) in &fields {
                    head = head.header(k, v);
                }
                let Ok(head) = head.body(()) else { return };
                match respond.send_response(head, false) {
                    Ok(stream) => body = Some(stream),
                    Err(_) => return,
                }
            }
            Step::Data(bytes) => {
                if let Some(stream) = body.as_mut()
                    && stream.send_data(Bytes::from(bytes), false).is_err()
                {
                    return;
                }
            }
            Step::Delay(pause) => tokio::time::sleep(pause).await,
            Step::Wait(gate) => gate.passed().await,
        }
    }
    match (reply.end, body) {
        (End::Done, Some(mut stream)) => {
            let _ = stream.send_data(Bytes::new(), true);
        }
        (End::Done, None) => {}
        (End::Reset | End::Close, Some(mut stream)) => stream.send_reset(Reason::INTERNAL_ERROR),
        (End::Reset | End::Close, None) => respond.send_reset(Reason::INTERNAL_ERROR),
        (End::Hang, stream) => {
            let reset = match stream {
                Some(mut s) => std::future::poll_fn(|cx| s.poll_reset(cx)).await,
                None => std::future::poll_fn(|cx| respond.poll_reset(cx)).await,
            };
            let how = reset.map_or_else(|e| e.to_string(), |r| format!("{r:?}"));
            shared.record().cancelled.push(how);
        }
    }
}
