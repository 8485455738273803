//! Clients: curl and raw TCP connections with a small HTTP/1.1 response reader.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs curl with `args`, silent but showing errors, bounded in time and
/// never through a proxy from the environment.
pub fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "30", "--noproxy", "*"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("curl not installed: run scripts/test")
}

/// curl that must succeed (exit 0); returns stdout as text.
pub fn curl_ok(args: &[&str]) -> String {
    let out = curl(args);
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes `bytes` on a fresh connection and reads until EOF or 3 s pass.
pub fn raw(port: u16, bytes: &[u8]) -> Vec<u8> {
    raw_eof(port, bytes).0
}

/// Like [`raw`], also telling whether the peer closed (EOF or reset) before the deadline.
pub fn raw_eof(port: u16, bytes: &[u8]) -> (Vec<u8>, bool) {
    let mut conn = RawConn::connect(port);
    conn.send(bytes);
    conn.read_to_close(Duration::from_secs(3))
}

/// A parsed HTTP/1.x response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Trailer fields of a chunked body.
    pub trailers: Vec<(String, String)>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// True if a `Connection` header lists `close`.
    pub fn closes(&self) -> bool {
        self.header_all("connection")
            .iter()
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("close"))
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Parses the status line and head of `bytes`; the body is what follows the
/// head, unparsed. For quick checks of what [`raw`] returned.
pub fn parse_head(bytes: &[u8]) -> Option<Response> {
    let end = find(bytes, b"\r\n\r\n")?;
    let (status, reason, headers) = parse_head_text(&bytes[..end])?;
    Some(Response {
        status,
        reason,
        headers,
        body: bytes[end + 4..].to_vec(),
        trailers: Vec::new(),
    })
}

type Head = (u16, String, Vec<(String, String)>);

fn parse_head_text(head: &[u8]) -> Option<Head> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status_line = lines.next()?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    let status = parts.next()?.parse().ok()?;
    let reason = parts.next().unwrap_or("").to_string();
    let headers = lines
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.to_string(), v.trim().to_string()))
        })
        .collect();
    Some((status, reason, headers))
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A client connection for keep-alive and byte-exact tests.
pub struct RawConn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl RawConn {
    pub fn connect(port: u16) -> RawConn {
        RawConn::try_connect(port).expect("connect to levee")
    }

    pub fn try_connect(port: u16) -> std::io::Result<RawConn> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_nodelay(true)?;
        Ok(RawConn {
            stream,
            buf: Vec::new(),
        })
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to levee");
    }

    /// Like `send`, but reports failure instead of panicking.
    pub fn try_send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads at least one more byte into the buffer; `Ok(false)` on EOF.
    fn fill(&mut self, deadline: Instant) -> std::io::Result<bool> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(ErrorKind::TimedOut, "deadline passed"));
        }
        self.stream.set_read_timeout(Some(left))?;
        let mut chunk = [0u8; 64 * 1024];
        let n = loop {
            match self.stream.read(&mut chunk) {
                // A signal to the test process (a child's exit) is no answer.
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// Reads until `needle` is in the buffer; returns the bytes up to and including it.
    fn read_until(&mut self, needle: &[u8], deadline: Instant) -> std::io::Result<Vec<u8>> {
        loop {
            if let Some(i) = find(&self.buf, needle) {
                let rest = self.buf.split_off(i + needle.len());
                return Ok(std::mem::replace(&mut self.buf, rest));
            }
            if !self.fill(deadline)? {
                return Err(std::io::Error::new(
                    ErrorKind::UnexpectedEof,
                    format!(
                        "EOF before {:?}; had {:?}",
                        String::from_utf8_lossy(needle),
                        String::from_utf8_lossy(&self.buf)
                    ),
                ));
            }
        }
    }

    fn read_exact_buf(&mut self, n: usize, deadline: Instant) -> std::io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill(deadline)? {
                return Err(std::io::Error::new(ErrorKind::UnexpectedEof, "EOF in body"));
            }
        }
        let rest = self.buf.split_off(n);
        Ok(std::mem::replace(&mut self.buf, rest))
    }

    /// Reads one response head (status line and fields).
    pub fn read_response_head(&mut self) -> Response {
        self.try_read_response_head(Duration::from_secs(10))
            .expect("read response head")
    }

    pub fn try_read_response_head(&mut self, timeout: Duration) -> std::io::Result<Response> {
        let deadline = Instant::now() + timeout;
        let head = self.read_until(b"\r\n\r\n", deadline)?;
        let (status, reason, headers) = parse_head_text(&head[..head.len() - 4])
            .ok_or_else(|| std::io::Error::other(format!("bad response head {head:?}")))?;
        Ok(Response {
            status,
            reason,
            headers,
            body: Vec::new(),
            trailers: Vec::new(),
        })
    }

    /// Reads one whole response to a request made with `method`.
    pub fn read_response(&mut self, method: &str) -> Response {
        self.try_read_response(method, Duration::from_secs(10))
            .expect("read response")
    }

    pub fn try_read_response(
        &mut self,
        method: &str,
        timeout: Duration,
    ) -> std::io::Result<Response> {
        let deadline = Instant::now() + timeout;
        let mut resp = self.try_read_response_head(timeout)?;
        while resp.status / 100 == 1 {
            resp =
                self.try_read_response_head(deadline.saturating_duration_since(Instant::now()))?;
        }
        let bodiless = method == "HEAD" || resp.status == 204 || resp.status == 304;
        if bodiless {
            return Ok(resp);
        }
        let chunked = resp
            .header_all("transfer-encoding")
            .iter()
            .any(|v| v.to_ascii_lowercase().contains("chunked"));
        if chunked {
            loop {
                let line = self.read_until(b"\r\n", deadline)?;
                let text = String::from_utf8_lossy(&line[..line.len() - 2]).into_owned();
                let size_text = text.split(';').next().unwrap_or("").trim();
                let size = usize::from_str_radix(size_text, 16)
                    .map_err(|_| std::io::Error::other(format!("bad chunk size line {text:?}")))?;
                if size == 0 {
                    loop {
                        let t = self.read_until(b"\r\n", deadline)?;
                        if t == b"\r\n" {
                            break;
                        }
                        let t = String::from_utf8_lossy(&t[..t.len() - 2]).into_owned();
                        if let Some((k, v)) = t.split_once(':') {
                            resp.trailers.push((k.to_string(), v.trim().to_string()));
                        }
                    }
                    break;
                }
                let data = self.read_exact_buf(size + 2, deadline)?;
                resp.body.extend_from_slice(&data[..size]);
            }
        } else if let Some(len) = resp.header("content-length") {
            let len: usize = len
                .parse()
                .map_err(|_| std::io::Error::other(format!("bad content-length {len}")))?;
            resp.body = self.read_exact_buf(len, deadline)?;
        } else {
            // Delimited by close.
            let (rest, _) = self.read_to_close(deadline.saturating_duration_since(Instant::now()));
            resp.body = rest;
        }
        Ok(resp)
    }

    /// Reads everything until the peer closes or `timeout` passes; the flag
    /// says whether it closed (EOF or reset) in time.
    pub fn read_to_close(&mut self, timeout: Duration) -> (Vec<u8>, bool) {
        let deadline = Instant::now() + timeout;
        let closed = loop {
            match self.fill(deadline) {
                Ok(true) => continue,
                Ok(false) => break true,
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break true,
                Err(_) => break false,
            }
        };
        (std::mem::take(&mut self.buf), closed)
    }

    /// True if the peer closes within `timeout` without sending anything more.
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        let (rest, closed) = self.read_to_close(timeout);
        closed && rest.is_empty()
    }
}

/// `GET path` with `Host: host` as HTTP/1.1 request bytes.
pub fn get_req(path: &str, host: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes()
}

/// The protocol a [`curl_as`] request speaks.
#[derive(Clone, Copy, Debug)]
pub enum Proto {
    /// HTTP/1.1.
    H1,
    /// HTTP/2 with prior knowledge (h2c), on a listener with
    /// `http2 = "prior-knowledge"`.
    H2,
}

/// Both protocols, for tests that hold each behaviour to both.
pub const PROTOS: [Proto; 2] = [Proto::H1, Proto::H2];

/// A response as `curl -i` printed it.
pub struct Got {
    pub status: u16,
    /// The status line and header lines.
    pub head: String,
    pub body: String,
}

impl Got {
    /// The first field named `name` (any case), trimmed.
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

/// `GET path` on `127.0.0.1:port` over `proto`, the path sent as it is
/// written (`--path-as-is`), with `extra` curl arguments.
pub fn curl_as(proto: Proto, port: u16, path: &str, extra: &[&str]) -> Got {
    let flag = match proto {
        Proto::H1 => "--http1.1",
        Proto::H2 => "--http2-prior-knowledge",
    };
    let url = format!("http://127.0.0.1:{port}{path}");
    let out = curl(&[&["-i", "--path-as-is", flag], extra, &[url.as_str()]].concat());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no response to {path}: {out:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status for {path}: {head}"));
    Got {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// `curl -sS -i` of `url` with `args` before it: the head in lower case
/// and the body, line ends as `\n`.
pub fn curl_head_body(url: &str, args: &[&str]) -> (String, String) {
    let mut all = vec!["-sS", "-i", "--max-time", "20"];
    all.extend_from_slice(args);
    all.push(url);
    let out = curl(&all);
    let text = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    (head.to_lowercase(), body.to_owned())
}

/// The value of field `name` (lower case) in a head from [`curl_head_body`].
pub fn head_field<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .map(str::trim)
}
