//! One HTTP/2 stream: its head built from the decoded fields (request.rs),
//! then served as an exchange on the stream's own end (exchange/h2.rs):
//! the same phases an HTTP/1 request goes through (serve.rs), with no
//! HTTP/1 text in between; a route to an HTTP/2 upstream relays it stream
//! to stream (proxy/h2.rs, exchange/h2/relay.rs).

use std::time::Instant;

use bytes::Bytes;
use h2::{Reason, RecvStream, server::SendResponse};
use tracing::Instrument;

use super::{Conn, request};
use crate::exchange::{Exchange, Outcome, Stream};
use crate::message::RequestHead;
use crate::origin;
use crate::serve;

/// Serves one stream of `conn` and logs it.
pub(super) async fn serve(
    req: http::Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    conn: &Conn,
) {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let site = conn.listener.shared.site.load_full();
    let head = match request::head(&parts, body.is_end_stream(), &site.head_limits) {
        Ok(head) => head,
        Err(request::Refusal::Head(e)) => {
            refuse(&mut respond, conn, &site, started, e.status());
            return;
        }
        Err(e) => {
            tracing::debug!(peer = %conn.peer, error = %e, "malformed HTTP/2 request");
            respond.send_reset(Reason::PROTOCOL_ERROR);
            return;
        }
    };
    drop(parts);
    let origin = origin_of(conn, &site, &head);
    // In flight until the response is out.
    let _in_flight = conn.listener.shared.begin();
    let mut stream = Stream::new(body, respond, &site, conn.local);
    let id = serve::request_id(&site, &head, &origin);
    let mut ex = Exchange::h2(head, origin, conn.peer, conn.hsts, &mut stream);
    ex.id = id;
    let listener = &conn.listener;
    let span = serve::request_span(&ex.head, &id);
    let (mut done, routed) = serve::serve(&mut ex, listener.addr, &listener.shared, &site, 0)
        .instrument(span)
        .await;
    let head = ex.head;
    stream.finish();
    if stream.went_away() {
        // The client reset the stream or its connection ended: its
        // exchange stopped as soon as that was seen (gone.rs).
        done.status = 499;
        done.bytes = stream.sent();
    }
    let route = Some(serve::route_stats(routed));
    serve::log(&site, origin.ip, Some((&head, &id)), &done, started, route);
}

/// Who a stream's request is for (origin.rs).
fn origin_of(conn: &Conn, site: &crate::Site, head: &RequestHead) -> origin::Origin {
    let trust = site.trust(conn.listener.addr);
    origin::resolve(head, conn.peer.ip(), conn.https, trust)
}

/// Answers a request the head rules refuse, and logs it.
fn refuse(
    respond: &mut SendResponse<Bytes>,
    conn: &Conn,
    site: &crate::Site,
    started: Instant,
    status: u16,
) {
    let mut r = http::Response::new(());
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_REQUEST);
    let _ = respond.send_response(r, true);
    serve::log(
        site,
        conn.peer.ip(),
        None,
        &Outcome::ended(status),
        started,
        None,
    );
}
