//! The HTTP/2 request a server of an HTTP/2 upstream receives: the
//! client's fields forwarded by the same code as for HTTP/1
//! (`proxy::headers::forwarded_fields`), the `Host` it decides as
//! `:authority`, and `te: trailers` always, since levee reads trailers
//! and gRPC servers require it.

use http::header::{CONTENT_LENGTH, TE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, Version};

use crate::message::{Framing, RequestHead};
use crate::proxy::headers::{FieldOut, Forwarding, forwarded_fields};

/// Why no request could be built: a field the client sent that HTTP/2
/// cannot carry as it is.
#[derive(Debug, thiserror::Error)]
#[error("cannot forward over HTTP/2: {0}")]
pub(crate) struct Unfit(&'static str);

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

/// The request for the server, `https` when the upstream speaks TLS.
pub(crate) fn upstream_request(
    req: &RequestHead,
    fwd: &Forwarding<'_>,
    https: bool,
) -> Result<Request<()>, Unfit> {
    let mut fields = H2Fields::default();
    forwarded_fields(req, fwd, &mut fields);
    // TE is hop by hop: it says what levee takes, and levee reads trailers
    // (and gRPC servers refuse a request without it), as nginx's grpc_pass.
    fields.map.insert(TE, HeaderValue::from_static("trailers"));
    if let Framing::Length(n) = req.framing {
        fields.map.insert(CONTENT_LENGTH, HeaderValue::from(n));
    }
    let authority = fields.authority.ok_or(Unfit("no authority"))?;
    let uri = Uri::builder()
        .scheme(if https { "https" } else { "http" })
        .authority(authority)
        .path_and_query(req.uri())
        .build()
        .map_err(|_| Unfit("the path or authority"))?;
    let method = Method::from_bytes(req.method()).map_err(|_| Unfit("the method"))?;
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
