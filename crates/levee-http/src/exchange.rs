//! The exchange: one request from a client and the way to answer it,
//! whatever protocol the client speaks. Every step after the head is read
//! (routing, protections, the cache, static files, redirects and
//! `respond`, the proxy, upgrades, the access log) acts on an
//! [`Exchange`], never on a protocol's bytes.
//!
//! An exchange carries:
//!
//! - the parsed request head ([`RequestHead`], its path normalised once,
//!   normal.rs), and who it is for ([`Origin`], as `trusted_proxies`
//!   decided), the connection's peer and HSTS;
//! - its client's [`End`]: the HTTP/1 connection (`h1.rs`: socket, bytes
//!   read ahead, framing) or the HTTP/2 stream (`h2.rs`: its DATA, its
//!   HEADERS and DATA as the window allows), each both the body source
//!   and the response sink. An HTTP/2 stream never goes through HTTP/1
//!   text.
//!
//! What the steps ask of an exchange, as methods:
//!
//! | step | methods |
//! |---|---|
//! | answer with levee's own response | [`Exchange::reply`], [`Exchange::fail`], [`Exchange::send_reply`] |
//! | the request body | [`Exchange::read_body_start`], [`Exchange::drain_body`], [`Exchange::prebuffer`], [`Exchange::take_body`], [`Exchange::relay_body_h1`] |
//! | a file (static routes) | [`Exchange::send_file_head`], [`Exchange::send_file`], [`Exchange::send_bytes`] |
//! | a stored response (cache) | [`Exchange::send_stored`] |
//! | a server's response | [`Exchange::send_continue`], [`Exchange::send_interim`], [`Exchange::relay_response_h1`], [`Exchange::send_upstream_head`], [`Exchange::tunnel`] |
//! | the client leaving | [`Exchange::gone`] |
//!
//! A feature that answers or reads the body does it through these, so it
//! serves every client alike (`mirror_route.rs` is a small example).

mod h1;
pub(crate) mod h2;
pub(crate) mod h2_upstream;
mod outcome;
mod reply;

use std::net::SocketAddr;

use bytes::BytesMut;
use levee_config::Timeouts;
use levee_upstream::{Fault, UpstreamStream};

pub(crate) use h1::Client;
pub(crate) use h2::Stream;
pub(crate) use outcome::{Next, Outcome, Relayed, StreamEnd};
pub(crate) use reply::Reply;

use crate::body::{BodySink, Output, Relay, Stopped};
use crate::message::{Framing, RequestHead, ResponseHead};
use crate::origin::Origin;
use crate::shape::{Dress, RequestId, Shaping, h1_head};
use crate::site::Site;

/// One request and the way to answer it.
#[derive(Debug)]
pub struct Exchange<'c> {
    /// The request head; its path normalised once (normal.rs).
    pub head: RequestHead,
    /// Who the request is for (origin.rs).
    pub origin: Origin,
    /// The connection's peer (after any PROXY header), for debug lines.
    pub peer: SocketAddr,
    /// `Strict-Transport-Security: max-age` on a TLS listener that sets it.
    pub hsts: Option<u64>,
    /// The connection may carry another request after this one.
    pub keep_alive: bool,
    /// The client's end: where the body comes from and the response goes.
    pub end: End<'c>,
    /// The route's compression (compress.rs); `None` when it has none.
    pub compress: Option<std::sync::Arc<levee_config::Compress>>,
    /// The request's id (shape/id.rs); empty when ids are off.
    pub id: RequestId,
    /// The route's header rules and the id's field, set by serve.rs.
    pub(crate) shaping: Shaping<'c>,
}

/// Body bytes the protection step reads before the proxy takes over: the
/// proxy's own prebuffer is the same size, so it finds them already there.
const BODY_START: u64 = 16 * 1024;

/// How much of a request body `read_body_start` reads under the client's
/// minimum progress, for either end: the first [`BODY_START`] bytes of a
/// `Content-Length` body (all of a smaller one), so that a body trickled in
/// a few bytes at a time is refused with 408 instead of tying up a
/// connection. `None`: nothing now (no minimum progress, chunked bodies and
/// `Expect: 100-continue` are left to the proxy's prebuffer, and a body
/// over `max_body` gets the proxy's 413 without being read).
pub(crate) fn body_start(head: &RequestHead, site: &Site) -> Option<usize> {
    let Framing::Length(n) = head.framing else {
        return None;
    };
    if site.pace.is_none() || head.expect_continue {
        return None;
    }
    let max = site.limits.max_body;
    if max > 0 && n > max {
        return None;
    }
    Some(usize::try_from(n.min(BODY_START)).unwrap_or(usize::MAX))
}

/// The client's end of an exchange.
#[derive(Debug)]
pub enum End<'c> {
    /// An HTTP/1 connection (h1.rs).
    H1(&'c mut Client),
    /// An HTTP/2 stream (h2.rs).
    H2(&'c mut Stream),
}

impl<'c> Exchange<'c> {
    /// An exchange on an HTTP/1 connection, for `head` from `origin`.
    pub fn h1(head: RequestHead, origin: Origin, client: &'c mut Client) -> Exchange<'c> {
        Exchange {
            head,
            origin,
            peer: client.peer,
            hsts: client.hsts,
            keep_alive: false,
            end: End::H1(client),
            compress: None,
            id: RequestId::none(),
            shaping: Shaping::default(),
        }
    }

    /// An exchange on an HTTP/2 stream, for `head` from `origin`, on a
    /// connection from `peer`.
    pub fn h2(
        head: RequestHead,
        origin: Origin,
        peer: SocketAddr,
        hsts: Option<u64>,
        stream: &'c mut Stream,
    ) -> Exchange<'c> {
        Exchange {
            head,
            origin,
            peer,
            hsts,
            keep_alive: false,
            end: End::H2(stream),
            compress: None,
            id: RequestId::none(),
            shaping: Shaping::default(),
        }
    }

    /// What shapes the request sent to the server at `upstream`.
    pub(crate) fn upward(&self, upstream: SocketAddr) -> crate::shape::Upward<'_> {
        let shaping = Shaping {
            upstream: Some(upstream),
            ..self.shaping
        };
        let d = Dress::of(&self.head, &self.origin, &self.id, &shaping, None);
        crate::shape::Upward {
            rules: self.shaping.shape.and_then(|s| s.request()),
            id: d.id,
            vars: d.vars,
        }
    }

    /// What a fetch on this request's behalf sends upstream (cache/fetch.rs).
    pub(crate) fn held(&self) -> crate::shape::Held {
        crate::shape::Held::of(&self.shaping, &self.id)
    }

    /// The request is a HEAD: no response body goes out.
    pub fn is_head(&self) -> bool {
        self.head.is_head()
    }

    /// The client speaks HTTP/2.
    pub fn is_h2(&self) -> bool {
        matches!(self.end, End::H2(_))
    }

    /// The encoder for a response of `status` with `fields` to this
    /// exchange's client, when its route compresses and the client and
    /// the response qualify (compress.rs): HTTP/1 output as chunks.
    pub(crate) fn encoder<'a>(
        &self,
        status: u16,
        fields: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Option<Box<crate::compress::Encoder>> {
        let rules = self.compress.as_deref();
        crate::compress::encoder_for(rules, &self.head, status, fields, !self.is_h2())
    }

    /// The request has no body (left to read).
    pub fn body_ended(&self) -> bool {
        match &self.end {
            End::H1(_) => matches!(self.head.framing, Framing::None | Framing::Length(0)),
            End::H2(s) => s.body_ended(),
        }
    }

    /// The address the client connected to (for PROXY headers to upstreams).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match &self.end {
            End::H1(c) => crate::stream::local_addr(&c.stream),
            End::H2(s) => s.local_addr(),
        }
    }

    /// Resolves once the client has gone away (gone.rs); never while it
    /// stays. What an HTTP/1 client sends meanwhile is kept as its next
    /// request.
    pub async fn gone(&mut self) {
        match &mut self.end {
            End::H1(c) => c.gone().await,
            End::H2(s) => s.gone().await,
        }
    }

    /// Sends `reply` (an error page in place of levee's error body, when
    /// one is configured) with the connection kept open if the exchange may
    /// (`keep_alive`), and `Strict-Transport-Security` when `hsts` and the
    /// listener sets it. The body bytes sent; `None` if the client is gone.
    pub async fn send_reply(
        &mut self,
        reply: &Reply<'_>,
        keep_alive: bool,
        hsts: bool,
        site: &Site,
    ) -> Option<u64> {
        let pages = self.shaping.shape.map_or(&site.pages, |s| &s.pages);
        let mut fields = Vec::new();
        let page = pages.dress(reply, &self.head, &mut fields);
        let reply = page.as_ref().unwrap_or(reply);
        let head_only = self.head.is_head();
        let bytes = reply.body_len(head_only);
        let hsts = if hsts { self.hsts } else { None };
        let d = Dress::of(&self.head, &self.origin, &self.id, &self.shaping, hsts).own();
        let sent = match &mut self.end {
            End::H1(c) => {
                let mut out = reply.h1(keep_alive, head_only);
                h1_head(&mut out, &d);
                c.send(&out, site.timeouts.client_send).await
            }
            End::H2(s) => s.send_reply(reply, head_only, &d).await,
        };
        sent.then_some(bytes)
    }

    /// A server's error `status` is answered with the route's error page
    /// instead (`intercept_errors`).
    pub(crate) fn intercepts(&self, status: u16) -> bool {
        self.shaping.shape.is_some_and(|s| s.intercepts(status))
    }

    /// Answers with `reply` (HSTS included) and ends the exchange: the
    /// connection stays open if it may, lingers if the request's body was
    /// not read, and closes if the client is gone.
    pub async fn reply(&mut self, reply: &Reply<'_>, site: &Site) -> Outcome {
        let sent = self.send_reply(reply, self.keep_alive, true, site).await;
        let next = self.next_after(sent.is_some(), !reply.close && self.keep_alive);
        Outcome {
            bytes: sent.unwrap_or(0),
            ..Outcome::of(reply.status, next)
        }
    }

    /// What the connection does after a response of levee's own: kept open
    /// if `keep_alive`, lingering if the body was not read, closed if the
    /// response could not be sent.
    pub(crate) fn next_after(&self, sent: bool, keep_alive: bool) -> Next {
        if !sent {
            Next::Close
        } else if self.head.framing != Framing::None {
            Next::Linger
        } else if keep_alive {
            Next::KeepAlive
        } else {
            Next::Close
        }
    }

    /// Answers a request levee refused or could not forward with the error
    /// `status`, asking the client to close, and ends the exchange; the
    /// log counts the body bytes sent.
    pub async fn fail(&mut self, status: u16, fields: &[(&str, &[u8])], site: &Site) -> Outcome {
        let reply = Reply::error(status, fields).closing();
        let sent = self.send_reply(&reply, false, false, site).await;
        Outcome {
            bytes: sent.unwrap_or(0),
            ..Outcome::of(status, Next::Linger)
        }
    }

    /// A head of levee's own for a file that follows (static routes):
    /// `status` with `fields` (HSTS added), then `body` bytes. False if the
    /// client is gone.
    pub async fn send_file_head(
        &mut self,
        status: u16,
        fields: &[(&'static str, String)],
        body: u64,
        keep_alive: bool,
        site: &Site,
    ) -> bool {
        let d = Dress::of(&self.head, &self.origin, &self.id, &self.shaping, self.hsts).own();
        match &mut self.end {
            End::H1(c) => {
                let mut out = crate::h1::write::own_head(status, fields, keep_alive);
                h1_head(&mut out, &d);
                c.send(&out, site.timeouts.client_send).await
            }
            End::H2(s) => {
                let fields = fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()));
                s.send_own_head(status, fields, body, &d)
            }
        }
    }

    /// `len` bytes of `file` from `start`, after [`Exchange::send_file_head`]:
    /// `sendfile` on plain HTTP/1, read and written through TLS.
    pub async fn send_file(
        &mut self,
        file: &std::fs::File,
        start: u64,
        len: u64,
        site: &Site,
    ) -> std::io::Result<u64> {
        match &mut self.end {
            End::H1(c) => c.send_file(file, start, len, site).await,
            End::H2(s) => s.send_file(file, start, len).await,
        }
    }

    /// Body bytes of levee's own after a head (multipart preambles). False
    /// if the client is gone.
    pub async fn send_bytes(&mut self, bytes: &[u8], site: &Site) -> bool {
        match &mut self.end {
            End::H1(c) => c.send(bytes, site.timeouts.client_send).await,
            End::H2(s) => s.send_bytes(bytes).await,
        }
    }

    /// A head for a body compressed on its way (a cache hit): `status`
    /// and `fields` as they are, HSTS, and on HTTP/1.1 the chunked coding.
    /// The body follows with [`Exchange::send_bytes`] and
    /// [`Exchange::send_end`]. False if the client is gone.
    pub async fn send_coded_head(
        &mut self,
        status: u16,
        fields: &[(Vec<u8>, Vec<u8>)],
        site: &Site,
    ) -> bool {
        let d = Dress::of(&self.head, &self.origin, &self.id, &self.shaping, self.hsts);
        match &mut self.end {
            End::H1(c) => {
                let mut out = Vec::with_capacity(512);
                crate::h1::write::status_line(&mut out, status);
                for (name, value) in fields {
                    crate::h1::write::field(&mut out, name, value);
                }
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
                if !self.keep_alive {
                    out.extend_from_slice(b"Connection: close\r\n");
                }
                out.extend_from_slice(b"\r\n");
                h1_head(&mut out, &d);
                c.send(&out, site.timeouts.client_send).await
            }
            End::H2(s) => {
                let fields = fields.iter().map(|(n, v)| (n.as_slice(), v.as_slice()));
                s.send_coded_head(status, fields, &d)
            }
        }
    }

    /// The last body bytes of levee's own after a head sent with an
    /// unknown length (a compressed file): an HTTP/2 stream ends with them.
    /// False if the client is gone.
    pub async fn send_end(&mut self, bytes: &[u8], site: &Site) -> bool {
        match &mut self.end {
            End::H1(c) => bytes.is_empty() || c.send(bytes, site.timeouts.client_send).await,
            End::H2(s) => s.send_end(bytes).await,
        }
    }

    /// A response answered from the cache's store: its head, then its body
    /// pieces. False if the client is gone or too slow; with the body
    /// bytes when they were compressed on the way (`None`: the stored body
    /// as it is).
    pub async fn send_stored(
        &mut self,
        answer: crate::cache::reply::Answer,
        site: &Site,
    ) -> (bool, Option<u64>) {
        if self.compress.is_some() && !answer.body.is_empty() {
            let lines = answer.head.get(answer.fields.clone()).unwrap_or_default();
            let fields = crate::compress::lines(lines);
            if let Some(enc) = self.encoder(answer.status, fields) {
                let (ok, sent) =
                    Box::pin(crate::cache::compressed::send(self, answer, enc, site)).await;
                return (ok, Some(sent));
            }
        }
        let d = Dress::of(&self.head, &self.origin, &self.id, &self.shaping, self.hsts);
        let head_only = self.head.is_head();
        let ok = match &mut self.end {
            End::H1(c) => c.send_stored(answer, &d, site).await,
            End::H2(s) => {
                let lines = answer.head.get(answer.fields.clone()).unwrap_or_default();
                s.send_stored(answer.status, lines, answer.body, head_only, &d)
                    .await
            }
        };
        (ok, None)
    }

    /// `100 Continue`, when the client asked for it and has sent no body
    /// yet. False if the client is gone.
    pub async fn send_continue(&mut self, site: &Site) -> bool {
        match &mut self.end {
            End::H1(c) => c.send_continue(&self.head, site.timeouts.client_send).await,
            End::H2(s) => s.send_continue(&self.head),
        }
    }

    /// A server's interim (1xx) response, passed on where the client takes it.
    pub async fn send_interim(&mut self, resp: &ResponseHead, site: &Site) {
        match &mut self.end {
            End::H1(c) => {
                c.send_interim(resp, &self.head, site.timeouts.client_send)
                    .await
            }
            // Only 100 Continue is levee's to give an HTTP/2 client.
            End::H2(_) => {}
        }
    }

    /// A server's response head without a body (a HEAD answered from a GET
    /// fetched for the cache), `extra` lines added. The connection stays
    /// open after it if it may; false if the client is gone.
    pub async fn send_upstream_head(
        &mut self,
        resp: &ResponseHead,
        extra: &[u8],
        site: &Site,
    ) -> (bool, bool) {
        let d = Dress::of(&self.head, &self.origin, &self.id, &self.shaping, self.hsts);
        match &mut self.end {
            End::H1(c) => {
                let framing = crate::h1::head::client_framing(resp, &self.head, self.keep_alive);
                let bytes = crate::h1::head::client_response(resp, &self.head, framing, extra, &d);
                let sent = c.send(&bytes, site.timeouts.client_send).await;
                (sent, framing.keep_alive)
            }
            End::H2(s) => (s.send_upstream_head(resp, extra, &d), true),
        }
    }

    /// Relays an HTTP/1 server's response: its head (less hop-by-hop
    /// fields, `extra` lines added, HSTS), then its body from `buf` and
    /// `up`, a copy to `tee` when the cache takes one. Returns the body
    /// bytes the client was given (or why the relay stopped) and whether
    /// the client's connection may stay open after it.
    pub async fn relay_response_h1(
        &mut self,
        resp: &ResponseHead,
        extra: &[u8],
        up: &mut UpstreamStream,
        buf: &mut BytesMut,
        tee: Option<&mut dyn BodySink>,
        t: &Timeouts,
    ) -> (Result<u64, Stopped>, bool) {
        let mut enc = match resp.framing {
            Framing::None | Framing::Length(0) => None,
            _ if self.compress.is_none() => None,
            _ => self.encoder(resp.status, resp.fields.iter()),
        };
        let d = Dress::of(&self.head, &self.origin, &self.id, &self.shaping, self.hsts);
        match &mut self.end {
            End::H1(c) => {
                let mut framing =
                    crate::h1::head::client_framing(resp, &self.head, self.keep_alive);
                // A compressed body is chunked whatever the server's framing.
                framing.chunked |= enc.is_some();
                let coding = enc.as_deref().map(crate::compress::Encoder::coding);
                let out_head =
                    crate::h1::head::client_head(resp, &self.head, framing, extra, coding, &d);
                let relay = Relay {
                    framing: resp.framing,
                    output: if enc.is_none()
                        && (framing.chunked || resp.framing != Framing::Chunked)
                    {
                        Output::AsIs
                    } else {
                        Output::Dechunked
                    },
                    read_timeout: t.upstream_read,
                    write_timeout: t.client_send,
                    limit: None,
                };
                let relayed = c
                    .relay_response_h1(&relay, up, buf, out_head, tee, enc.as_deref_mut())
                    .await;
                (relayed, framing.keep_alive)
            }
            End::H2(s) => {
                let relayed = s
                    .relay_response_h1(
                        &self.head,
                        resp,
                        extra,
                        &d,
                        up,
                        buf,
                        tee,
                        t.upstream_read,
                        enc,
                    )
                    .await;
                (relayed, true)
            }
        }
    }

    /// A bodiless status of levee's own for an HTTP/2 client of an HTTP/2
    /// server (HSTS included); an HTTP/1 client gets [`Exchange::fail`].
    pub fn send_bare(&mut self, status: u16) {
        let d = Dress::of(&self.head, &self.origin, &self.id, &self.shaping, self.hsts).own();
        if let End::H2(s) = &mut self.end {
            s.send_bare(status, &d);
        }
    }

    /// Turns the exchange into a tunnel after a server's 101 (`head`, the
    /// client's 101): bytes both ways until a side closes or idles.
    /// Returns the bytes sent to the client, `None` if the 101 was not.
    pub async fn tunnel(
        &mut self,
        head: &[u8],
        up: &mut UpstreamStream,
        from_up: BytesMut,
        t: &Timeouts,
    ) -> Option<u64> {
        match &mut self.end {
            End::H1(c) => c.tunnel(head, up, from_up, t).await,
            // HTTP/2 clients never ask for an upgrade (proxy/upgrade.rs).
            End::H2(_) => None,
        }
    }

    /// Reads the first bytes of a `Content-Length` body under the client's
    /// minimum progress (a proxied request's, before any server is
    /// involved): `Err` with the status that refuses a stalled one.
    pub async fn read_body_start(&mut self, site: &Site) -> Result<(), u16> {
        match &mut self.end {
            End::H1(c) => c.read_body_start(&self.head, site).await,
            End::H2(s) => s.read_body_start(&self.head, site).await,
        }
    }

    /// Reads the whole request body and drops it (a route that answers
    /// without one): `Err` with the status when it is malformed, stalls or
    /// passes `most` bytes.
    pub async fn drain_body(&mut self, site: &Site, most: u64) -> Result<(), u16> {
        match &mut self.end {
            End::H1(c) => c.drain_body(&self.head, site, most).await,
            End::H2(s) => s.drain_body(&self.head, site, most).await,
        }
    }

    /// Reads up to 16 KiB of the request body before a server is chosen:
    /// `Ok(Some(len))` when that is all of it, `Ok(None)` when more
    /// follows, `Err` with the status for the client (`None`: it is gone).
    pub async fn prebuffer(
        &mut self,
        site: &Site,
        limit: Option<u64>,
    ) -> Result<Option<usize>, Option<u16>> {
        match &mut self.end {
            End::H1(c) => c.prebuffer(&self.head, site, limit).await,
            End::H2(s) => s.prebuffer(&self.head, site, limit).await,
        }
    }

    /// The whole body [`Exchange::prebuffer`] read (its `len`), as an
    /// HTTP/1 server must receive it under the head's framing.
    pub fn take_body(&mut self, len: usize) -> BytesMut {
        match &mut self.end {
            End::H1(c) => c.take_body(len),
            End::H2(s) => s.take_body(&self.head, len),
        }
    }

    /// Streams the rest of the request body to an HTTP/1 server, within
    /// `limit` bytes.
    pub async fn relay_body_h1(
        &mut self,
        up: &mut UpstreamStream,
        t: &Timeouts,
        limit: Option<u64>,
    ) -> Result<(), Fault> {
        match &mut self.end {
            End::H1(c) => c.relay_body_h1(&self.head, up, t, limit).await,
            End::H2(s) => s.relay_body_h1(&self.head, up, t, limit).await,
        }
    }
}
