//! The redirector's own HTTP client, for listings, probes, spot checks and
//! checks of redirected files: one `HTTP/1.0` request per connection (no
//! chunked bodies to decode, nothing pooled: these requests are rare),
//! plain or over TLS with the system's roots. The caller bounds it in time.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Most bytes of a response head.
const MAX_HEAD: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("bad URL `{0}`")]
    Url(String),
    #[error("https is not available: {0}")]
    NoTls(String),
    #[error("connect: {0}")]
    Connect(#[source] std::io::Error),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed response")]
    Malformed,
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
}

/// Where a URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub tls: bool,
    /// Host as written (brackets kept for IPv6), for `Host` and connecting.
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Target {
    pub fn parse(url: &str) -> Option<Target> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else {
            (false, url.strip_prefix("http://")?)
        };
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        let default = if tls { 443 } else { 80 };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => (h, p.parse().ok()?),
            _ => (authority, default),
        };
        (!host.is_empty()).then(|| Target {
            tls,
            host: host.to_owned(),
            port,
            path: path.to_owned(),
        })
    }

    fn host_field(&self) -> String {
        match (self.tls, self.port) {
            (true, 443) | (false, 80) => self.host.clone(),
            _ => format!("{}:{}", self.host, self.port),
        }
    }
}

/// What came back.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub status: u16,
    pub content_length: Option<u64>,
    /// The complete length from `Content-Range: bytes a-b/TOTAL`.
    pub range_total: Option<u64>,
    /// The body, unless it went to a sink.
    pub body: Vec<u8>,
    /// Body bytes received.
    pub received: u64,
}

/// Where body bytes go when they are not kept.
pub type Sink<'a> = &'a mut (dyn FnMut(&[u8]) + Send);

/// A request: method, optional byte range (inclusive), how much body to
/// take at most (more is an error), and where body bytes go (else `body`).
pub struct Request<'a> {
    pub method: &'a str,
    pub range: Option<(u64, u64)>,
    pub max_body: usize,
    pub sink: Option<Sink<'a>>,
}

pub async fn fetch(
    tls: Option<&levee_tls::Connector>,
    url: &str,
    req: Request<'_>,
) -> Result<Reply, FetchError> {
    let target = Target::parse(url).ok_or_else(|| FetchError::Url(url.to_owned()))?;
    let host = target.host.trim_start_matches('[').trim_end_matches(']');
    let tcp = TcpStream::connect((host, target.port))
        .await
        .map_err(FetchError::Connect)?;
    let _ = tcp.set_nodelay(true);
    if target.tls {
        let connector =
            tls.ok_or_else(|| FetchError::NoTls("no trusted roots were loaded".into()))?;
        let stream = connector
            .connect(host, tcp)
            .await
            .map_err(FetchError::Connect)?;
        exchange(stream, &target, req).await
    } else {
        exchange(tcp, &target, req).await
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    target: &Target,
    mut req: Request<'_>,
) -> Result<Reply, FetchError> {
    let mut head = format!(
        "{} {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: levee-mirror/{}\r\nAccept-Encoding: identity\r\n",
        req.method,
        target.path,
        target.host_field(),
        env!("CARGO_PKG_VERSION"),
    );
    if let Some((a, b)) = req.range {
        head.push_str(&format!("Range: bytes={a}-{b}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await?;
    s.flush().await?;

    let mut buf = Vec::with_capacity(8192);
    let (mut reply, body_start) = loop {
        if buf.len() > MAX_HEAD {
            return Err(FetchError::Malformed);
        }
        let n = s.read_buf(&mut buf).await?;
        if let Some(parsed) = parse_head(&buf)? {
            break parsed;
        }
        if n == 0 {
            return Err(FetchError::Malformed);
        }
    };
    let want = if req.method == "HEAD" {
        Some(0)
    } else {
        reply.content_length
    };
    let mut deliver = |chunk: &[u8], reply: &mut Reply| -> Result<(), FetchError> {
        reply.received += chunk.len() as u64;
        if reply.received > req.max_body as u64 {
            return Err(FetchError::TooLarge(req.max_body));
        }
        match req.sink.as_mut() {
            Some(sink) => sink(chunk),
            None => reply.body.extend_from_slice(chunk),
        }
        Ok(())
    };
    let first = &buf[body_start..];
    let first = match want {
        Some(w) => &first[..first.len().min(w as usize)],
        None => first,
    };
    deliver(first, &mut reply)?;
    let mut chunk = vec![0u8; 16 * 1024];
    while want.is_none_or(|w| reply.received < w) {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        let take = match want {
            Some(w) => n.min((w - reply.received) as usize),
            None => n,
        };
        deliver(&chunk[..take], &mut reply)?;
    }
    Ok(reply)
}

/// The status and framing fields of a complete head, and where the body
/// starts; `None` while incomplete.
pub fn parse_head(buf: &[u8]) -> Result<Option<(Reply, usize)>, FetchError> {
    let mut fields = [httparse::EMPTY_HEADER; 64];
    let mut r = httparse::Response::new(&mut fields);
    let end = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(FetchError::Malformed),
    };
    let mut reply = Reply {
        status: r.code.ok_or(FetchError::Malformed)?,
        ..Reply::default()
    };
    for f in r.headers.iter() {
        let value = std::str::from_utf8(f.value).map(str::trim).unwrap_or("");
        if f.name.eq_ignore_ascii_case("content-length") {
            reply.content_length = Some(value.parse().map_err(|_| FetchError::Malformed)?);
        } else if f.name.eq_ignore_ascii_case("content-range") {
            reply.range_total = value.rsplit_once('/').and_then(|(_, t)| t.parse().ok());
        }
    }
    Ok(Some((reply, end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = Target::parse("http://127.0.0.2:8080/pub/a%20b").expect("valid");
        assert_eq!(
            (t.tls, t.host.as_str(), t.port, t.path.as_str()),
            (false, "127.0.0.2", 8080, "/pub/a%20b")
        );
        let t = Target::parse("https://[::1]/").expect("valid");
        assert_eq!((t.host.as_str(), t.port), ("[::1]", 443));
        assert_eq!(t.host_field(), "[::1]");
        assert!(Target::parse("ftp://x/").is_none());
    }

    #[test]
    fn heads_split_anywhere() {
        let head = b"HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\nContent-Range: bytes 0-9/12345\r\n\r\nbody";
        for cut in 0..head.len() - 4 {
            assert!(
                parse_head(&head[..cut]).expect("no error").is_none(),
                "{cut}"
            );
        }
        let (r, at) = parse_head(head).expect("valid").expect("complete");
        assert_eq!(
            (r.status, r.content_length, r.range_total),
            (206, Some(10), Some(12345))
        );
        assert_eq!(&head[at..], b"body");
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
    }
}
