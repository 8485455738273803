//! One attempt at a server of an HTTP/2 upstream (`protocol = "h2c" |
//! "h2"`, gRPC): connect (a shared connection with room under the peer's
//! `max_concurrent_streams`, else a new one: TCP, TLS with ALPN `h2`, the
//! HTTP/2 preface and SETTINGS; levee_upstream::pool::h2) and send (the
//! request's HEADERS handed to it). Nothing else goes out before the
//! relay: a request moves to another server only before this. Receive and
//! respond overlap for a stream (its body and the response flow at once,
//! as gRPC streaming needs): the ends' `relay_h2` (exchange/h1/h2.rs,
//! exchange/h2/relay.rs).
//!
//! The server receives the client's fields forwarded by the same code as
//! for HTTP/1 (`proxy::headers::forwarded_fields`), the `Host` it decides
//! as `:authority`, and `te: trailers` always, since levee reads trailers
//! and gRPC servers require it.

use bytes::Bytes;
use h2::SendStream;
use h2::client::ResponseFuture;
use http::header::{CONTENT_LENGTH, TE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, Version};
use levee_upstream::pool::h2 as pool;
use levee_upstream::{Dest, Fault, Group, Member};

use crate::message::{Framing, RequestHead};
use crate::proxy::headers::{FieldOut, Forwarding, forwarded_fields};
use crate::site::Site;

/// Fields gathered for an HTTP/2 request; `Host` becomes `:authority`.
#[derive(Default)]
struct H2Fields {
    map: HeaderMap,
    authority: Option<Vec<u8>>,
}

impl H2Fields {
    fn append(&mut self, name: &[u8], value: &[u8]) {
        // Request fields were parsed by the HTTP/1 rules, so both convert;
        // one that does not is dropped rather than failing the request.
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            self.map.append(n, v);
        }
    }
}

impl FieldOut for H2Fields {
    fn field(&mut self, name: &[u8], value: &[u8]) {
        if name.eq_ignore_ascii_case(b"host") {
            self.authority = Some(value.to_vec());
        } else {
            self.append(name, value);
        }
    }

    fn list<'v>(&mut self, name: &[u8], prior: impl Iterator<Item = &'v [u8]>, last: &[u8]) {
        let mut value = Vec::with_capacity(last.len() + 32);
        for v in prior {
            value.extend_from_slice(v);
            value.extend_from_slice(b", ");
        }
        value.extend_from_slice(last);
        self.append(name, &value);
    }
}

/// The two halves of a stream open on a server.
pub(crate) struct Opened {
    pub response: ResponseFuture,
    /// `None` when the request ended with its HEADERS.
    pub up: Option<SendStream<Bytes>>,
    /// Keeps the stream counted on its connection.
    pub held: pool::Held,
}

/// Opens a stream to `member` and hands it the request's HEADERS. The
/// `bool` of an error says whether the connection was a shared one.
pub(super) async fn attempt(
    group: &Group,
    member: &Member,
    req: Request<()>,
    end_of_stream: bool,
    fresh_only: bool,
    site: &Site,
) -> Result<Opened, (Fault, bool)> {
    let dest = Dest {
        addr: member.addr,
        tls: group.tls.as_ref().map(|t| (t, member.configured.as_str())),
        proxy_header: None,
    };
    let connect = site.timeouts.upstream_connect;
    let checkout = pool::checkout(&dest, fresh_only, connect, group.keepalive_timeout)
        .await
        .map_err(|fault| (fault, false))?;
    let reused = checkout.reused;
    let gone = |e: h2::Error| {
        checkout.held.discard();
        (Fault::Write(std::io::Error::other(e)), reused)
    };
    // Waits while the connection opens another stream; a connection at its
    // peer's stream limit was not handed out (pool/h2.rs).
    let mut send = match tokio::time::timeout(connect, checkout.send.clone().ready()).await {
        Err(_) => return Err((Fault::ConnectTimeout, reused)),
        Ok(Err(e)) => return Err(gone(e)),
        Ok(Ok(send)) => send,
    };
    let (response, up) = send.send_request(req, end_of_stream).map_err(gone)?;
    Ok(Opened {
        response,
        up: (!end_of_stream).then_some(up),
        held: checkout.held,
    })
}

/// The request for the server, `https` when the upstream speaks TLS;
/// `Fault::Unfit` for a field the client sent that HTTP/2 cannot carry as it is.
pub(super) fn upstream_request(
    req: &RequestHead,
    fwd: &Forwarding<'_>,
    https: bool,
) -> Result<Request<()>, Fault> {
    let mut fields = H2Fields::default();
    forwarded_fields(req, fwd, &mut fields);
    // TE is hop by hop: it says what levee takes, and levee reads trailers
    // (and gRPC servers refuse a request without it), as nginx's grpc_pass.
    fields.map.insert(TE, HeaderValue::from_static("trailers"));
    if let Framing::Length(n) = req.framing {
        fields.map.insert(CONTENT_LENGTH, HeaderValue::from(n));
    }
    let authority = fields
        .authority
        .ok_or_else(|| Fault::Unfit("no authority"))?;
    let uri = Uri::builder()
        .scheme(if https { "https" } else { "http" })
        .authority(authority)
        .path_and_query(req.uri())
        .build()
        .map_err(|_| Fault::Unfit("the path or authority"))?;
    let method = Method::from_bytes(req.method()).map_err(|_| Fault::Unfit("the method"))?;
    let mut out = Request::new(());
    *out.method_mut() = method;
    *out.uri_mut() = uri;
    *out.version_mut() = Version::HTTP_2;
    *out.headers_mut() = fields.map;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h1::{Parsed, parse_request};

    fn head(raw: &[u8]) -> RequestHead {
        let limits = crate::h1::HeadLimits {
            max_request_line: 8192,
            max_header_bytes: 65536,
            max_headers: 100,
        };
        match parse_request(raw, 0, &limits) {
            Ok(Parsed::Complete(p, n)) => p.into_head(bytes::Bytes::copy_from_slice(&raw[..n])),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fields_are_forwarded_and_host_becomes_the_authority() {
        let req = head(
            b"POST /svc/Call HTTP/1.1\r\nhost: api.test\r\nte: trailers\r\n\
              content-type: application/grpc\r\nconnection: x-hop\r\nx-hop: 1\r\n\
              x-forwarded-for: 10.0.0.1\r\ncontent-length: 5\r\n\r\n",
        );
        let fwd = Forwarding {
            origin: crate::origin::Origin::direct("192.0.2.7".parse().unwrap(), true),
            preserve_host: true,
            server_authority: "127.0.0.1:9",
            upgrade: None,
            up: crate::shape::Upward::none("192.0.2.7".parse().unwrap()),
        };
        let r = upstream_request(&req, &fwd, false).unwrap();
        assert_eq!(r.uri(), "http://api.test/svc/Call");
        assert_eq!(r.method(), "POST");
        let h = r.headers();
        for (name, want) in [
            ("te", "trailers"),
            ("content-type", "application/grpc"),
            // The client is not a trusted proxy: its own value is replaced.
            ("x-forwarded-for", "192.0.2.7"),
            ("x-real-ip", "192.0.2.7"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "api.test"),
            ("via", "1.1 levee"),
            ("content-length", "5"),
        ] {
            assert_eq!(h[name], want, "{name}");
        }
        assert!(h.get("host").is_none() && h.get("x-hop").is_none());
        assert!(h.get("connection").is_none());

        let fwd = Forwarding {
            preserve_host: false,
            ..fwd
        };
        let r = upstream_request(&req, &fwd, true).unwrap();
        assert_eq!(r.uri(), "https://127.0.0.1:9/svc/Call");
    }
}
