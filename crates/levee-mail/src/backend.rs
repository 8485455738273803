//! Logging in to the backend the auth step chose, with the credentials it
//! gave (pass-through, possibly rewritten by the auth service): IMAP LOGIN
//! under the client's own tag, so the backend's tagged reply (with its
//! `[CAPABILITY …]`) goes to the client unchanged; POP3 USER/PASS; SMTP EHLO
//! and AUTH PLAIN. The connect and the login have a bound each
//! (`backend_connect_timeout`, `backend_login_timeout`): a backend may take
//! its time to refuse a password (Dovecot's auth penalty grows to 15 s per
//! client address), and that is a refusal, not an unavailable backend.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::auth::Route;
use crate::line::next_line;

/// Longest backend line read during login (capability lists can be long).
const MAX_BACKEND_LINE: usize = 64 * 1024;

/// How to log in, by protocol.
#[derive(Debug, Clone, Copy)]
pub enum Greet<'a> {
    /// `tag` is the client's LOGIN/AUTHENTICATE tag; `id` what the client
    /// sent in `ID`, passed on to the backend; `asked_capability`, whether
    /// it sent CAPABILITY before logging in (see [`imap`]).
    Imap {
        tag: &'a [u8],
        id: &'a crate::imap::command::IdParams,
        asked_capability: bool,
    },
    Pop3,
    Smtp {
        helo: &'a [u8],
    },
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("connect timed out")]
    ConnectTimeout,
    #[error("login timed out")]
    LoginTimeout,
    #[error("unexpected reply: {0}")]
    Protocol(String),
    /// The backend said no to the credentials; its text.
    #[error("login refused: {0}")]
    Refused(String),
}

/// A logged-in backend connection.
#[derive(Debug)]
pub struct Backend {
    pub stream: TcpStream,
    pub addr: SocketAddr,
    /// What the client is sent next: the login reply and anything the
    /// backend sent after it.
    pub to_client: Vec<u8>,
    /// SMTP: the safe extensions the backend's EHLO offered, for levee to
    /// advertise before AUTH to later clients.
    pub smtp_extensions: Option<crate::smtp::Extensions>,
}

/// The client's address and the address it reached, to tell the backend.
pub type Forward = Option<(SocketAddr, SocketAddr)>;

/// The longest waits: to connect, then from connected to the login's answer.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub login: Duration,
}

/// `proxy_header`: sent before anything else (PROXY protocol), if any.
pub async fn login(
    route: &Route,
    greet: Greet<'_>,
    forward: Forward,
    proxy_header: Option<Vec<u8>>,
    timeouts: Timeouts,
) -> Result<Backend, BackendError> {
    let stream = tokio::time::timeout(timeouts.connect, TcpStream::connect(&route.backend))
        .await
        .map_err(|_| BackendError::ConnectTimeout)?
        .map_err(BackendError::Connect)?;
    tokio::time::timeout(
        timeouts.login,
        login_inner(stream, route, greet, forward, proxy_header),
    )
    .await
    .map_err(|_| BackendError::LoginTimeout)?
}

async fn login_inner(
    mut stream: TcpStream,
    route: &Route,
    greet: Greet<'_>,
    forward: Forward,
    proxy_header: Option<Vec<u8>>,
) -> Result<Backend, BackendError> {
    if let Some(header) = proxy_header {
        stream.write_all(&header).await?;
    }
    let _ = stream.set_nodelay(true);
    let addr = stream.peer_addr().map_err(BackendError::Connect)?;
    let mut b = Lines {
        stream,
        buf: Vec::with_capacity(512),
    };
    let mut smtp_extensions = None;
    let mut to_client = match greet {
        Greet::Imap {
            tag,
            id,
            asked_capability,
        } => imap(&mut b, route, (tag, asked_capability), id, forward).await?,
        Greet::Pop3 => pop3(&mut b, route, forward).await?,
        Greet::Smtp { helo } => {
            let (reply, extensions) = smtp(&mut b, route, helo, forward).await?;
            smtp_extensions = Some(extensions);
            reply
        }
    };
    to_client.extend_from_slice(&b.buf);
    Ok(Backend {
        stream: b.stream,
        addr,
        to_client,
        smtp_extensions,
    })
}

struct Lines {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Lines {
    /// The next line, CRLF included.
    async fn line(&mut self) -> Result<Vec<u8>, BackendError> {
        loop {
            match next_line(&self.buf, MAX_BACKEND_LINE) {
                Ok(Some((_, used))) => return Ok(self.buf.drain(..used).collect()),
                Ok(None) => {}
                Err(e) => return Err(BackendError::Protocol(e.to_string())),
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(BackendError::Protocol("connection closed".to_owned()));
            }
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), BackendError> {
        self.stream.write_all(bytes).await?;
        Ok(())
    }
}

fn text(line: &[u8]) -> String {
    String::from_utf8_lossy(line.trim_ascii_end()).into_owned()
}

/// An IMAP astring for `value`: quoted when it can be, else a LITERAL+.
fn imap_string(out: &mut Vec<u8>, value: &[u8], literal_plus: bool) -> Result<(), BackendError> {
    if value.iter().all(|&b| (0x20..0x7f).contains(&b)) {
        out.push(b'"');
        for &b in value {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
        return Ok(());
    }
    if !literal_plus {
        return Err(BackendError::Protocol(
            "credentials need a literal and the backend has no LITERAL+".to_owned(),
        ));
    }
    out.extend_from_slice(format!("{{{}+}}\r\n", value.len()).as_bytes());
    out.extend_from_slice(value);
    Ok(())
}

/// RFC 2971 `ID` for the backend: the client's own fields (except `x-`
/// ones, and those that would need a literal the backend may not take), then, when
/// forwarding, the fields Dovecot reads from trusted proxies. `None` when
/// there is nothing to say.
fn id_command(
    client_id: &crate::imap::command::IdParams,
    forward: Forward,
    literal_plus: bool,
) -> Option<Vec<u8>> {
    let mut fields: Vec<(Vec<u8>, Vec<u8>)> = client_id
        .iter()
        .filter_map(|(f, v)| Some((f.clone(), v.clone()?)))
        // The backend trusts levee's `x-` fields (originating address,
        // session, forward fields): a client must not set them.
        .filter(|(f, _)| !f.to_ascii_lowercase().starts_with(b"x-"))
        .collect();
    if let Some((peer, local)) = forward {
        for (f, v) in [
            ("x-originating-ip", peer.ip().to_string()),
            ("x-originating-port", peer.port().to_string()),
            ("x-connected-ip", local.ip().to_string()),
            ("x-connected-port", local.port().to_string()),
        ] {
            fields.push((f.as_bytes().to_vec(), v.into_bytes()));
        }
    }
    if fields.is_empty() {
        return None;
    }
    let mut cmd = b"levee-id ID (".to_vec();
    let mut first = true;
    for (f, v) in &fields {
        let mut pair = Vec::new();
        if imap_string(&mut pair, f, literal_plus).is_err() {
            continue;
        }
        pair.push(b' ');
        if imap_string(&mut pair, v, literal_plus).is_err() {
            continue;
        }
        if !first {
            cmd.push(b' ');
        }
        cmd.extend_from_slice(&pair);
        first = false;
    }
    cmd.extend_from_slice(b")\r\n");
    Some(cmd)
}

/// Sends `command` (tagged `tag`) and skips its answer, up to the tagged line.
async fn skip_answer(b: &mut Lines, command: &[u8], tag: &[u8]) -> Result<(), BackendError> {
    b.send(command).await?;
    loop {
        let line = b.line().await?;
        if line.strip_prefix(tag).is_some_and(|r| r.starts_with(b" ")) {
            return Ok(());
        }
    }
}

/// `client`: the client's login tag, and whether it asked CAPABILITY
/// before logging in. Dovecot then announces the post-login capabilities
/// in an untagged CAPABILITY response rather than in the login's response
/// code, since such clients may ignore response codes; levee answered
/// that CAPABILITY itself, so it asks the backend too, for the same answer.
async fn imap(
    b: &mut Lines,
    route: &Route,
    client: (&[u8], bool),
    client_id: &crate::imap::command::IdParams,
    forward: Forward,
) -> Result<Vec<u8>, BackendError> {
    let (tag, asked_capability) = client;
    let greeting = b.line().await?;
    if !greeting.starts_with(b"* OK") {
        return Err(BackendError::Protocol(text(&greeting)));
    }
    let literal_plus = greeting
        .to_ascii_uppercase()
        .windows(8)
        .any(|w| w == b"LITERAL+");
    if let Some(cmd) = id_command(client_id, forward, literal_plus) {
        skip_answer(b, &cmd, b"levee-id").await?;
    }
    if asked_capability {
        skip_answer(b, b"levee-cap CAPABILITY\r\n", b"levee-cap").await?;
    }
    let mut cmd = tag.to_vec();
    cmd.extend_from_slice(b" LOGIN ");
    imap_string(&mut cmd, &route.user, literal_plus)?;
    cmd.push(b' ');
    imap_string(&mut cmd, &route.pass, literal_plus)?;
    cmd.extend_from_slice(b"\r\n");
    b.send(&cmd).await?;
    let mut untagged = Vec::new();
    loop {
        let line = b.line().await?;
        let Some(rest) = line.strip_prefix(tag).and_then(|r| r.strip_prefix(b" ")) else {
            untagged.extend_from_slice(&line);
            continue;
        };
        if rest.len() >= 2 && rest[..2].eq_ignore_ascii_case(b"OK") {
            untagged.extend_from_slice(&line);
            return Ok(untagged);
        }
        // The client gets its own response code; drop the backend's.
        let mut why = rest.get(3..).unwrap_or(b"");
        if why.starts_with(b"[")
            && let Some(end) = why.iter().position(|&b| b == b']')
        {
            why = why[end + 1..].trim_ascii_start();
        }
        return Err(BackendError::Refused(text(why)));
    }
}

async fn pop3(b: &mut Lines, route: &Route, forward: Forward) -> Result<Vec<u8>, BackendError> {
    let greeting = b.line().await?;
    if !greeting.starts_with(b"+OK") {
        return Err(BackendError::Protocol(text(&greeting)));
    }
    if let Some((peer, _)) = forward {
        b.send(format!("XCLIENT ADDR={} PORT={}\r\n", peer.ip(), peer.port()).as_bytes())
            .await?;
        let reply = b.line().await?;
        if !reply.starts_with(b"+OK") {
            return Err(BackendError::Protocol(text(&reply)));
        }
    }
    for (verb, value) in [(&b"USER "[..], &route.user), (&b"PASS "[..], &route.pass)] {
        if value.iter().any(|&b| b == b'\r' || b == b'\n') {
            return Err(BackendError::Refused("invalid credentials".to_owned()));
        }
        let mut cmd = verb.to_vec();
        cmd.extend_from_slice(value);
        cmd.extend_from_slice(b"\r\n");
        b.send(&cmd).await?;
        let reply = b.line().await?;
        if !reply.starts_with(b"+OK") {
            return Err(BackendError::Refused(text(reply.get(5..).unwrap_or(b""))));
        }
        if verb == b"PASS " {
            return Ok(reply);
        }
    }
    Err(BackendError::Protocol("unreachable".to_owned()))
}

/// A whole (possibly multi-line) SMTP reply: its code and text.
async fn smtp_reply(b: &mut Lines) -> Result<(u16, Vec<u8>), BackendError> {
    let mut all = Vec::new();
    loop {
        let line = b.line().await?;
        let code = line
            .get(..3)
            .and_then(|c| std::str::from_utf8(c).ok())
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| BackendError::Protocol(text(&line)))?;
        let last = line.get(3) != Some(&b'-');
        all.extend_from_slice(&line);
        if last {
            return Ok((code, all));
        }
    }
}

/// The AUTH reply for the client, and the safe extensions of the EHLO
/// reply the session goes on with.
async fn smtp(
    b: &mut Lines,
    route: &Route,
    helo: &[u8],
    forward: Forward,
) -> Result<(Vec<u8>, crate::smtp::Extensions), BackendError> {
    let (code, reply) = smtp_reply(b).await?;
    if code != 220 {
        return Err(BackendError::Protocol(text(&reply)));
    }
    let mut ehlo = b"EHLO ".to_vec();
    ehlo.extend_from_slice(if helo.is_empty() { b"levee" } else { helo });
    ehlo.extend_from_slice(b"\r\n");
    b.send(&ehlo).await?;
    let (code, mut reply) = smtp_reply(b).await?;
    if code != 250 {
        return Err(BackendError::Protocol(text(&reply)));
    }
    let offers_xclient = reply.split(|&c| c == b'\n').any(|l| {
        l.get(4..11)
            .is_some_and(|w| w.eq_ignore_ascii_case(b"XCLIENT"))
    });
    if let (Some((peer, _)), true) = (forward, offers_xclient) {
        // Postfix/Dovecot XCLIENT: the session restarts with a new greeting.
        b.send(format!("XCLIENT ADDR={} PORT={}\r\n", peer.ip(), peer.port()).as_bytes())
            .await?;
        let (code, greeting) = smtp_reply(b).await?;
        if code != 220 {
            return Err(BackendError::Protocol(text(&greeting)));
        }
        b.send(&ehlo).await?;
        let (code, again) = smtp_reply(b).await?;
        if code != 250 {
            return Err(BackendError::Protocol(text(&again)));
        }
        reply = again;
    }
    let extensions = crate::smtp::Extensions::from_ehlo_reply(&reply);
    let auth = format!(
        "AUTH PLAIN {}\r\n",
        crate::sasl::encode_plain(b"", &route.user, &route.pass)
    );
    b.send(auth.as_bytes()).await?;
    let (code, reply) = smtp_reply(b).await?;
    match code {
        235 => Ok((
            b"235 2.7.0 Authentication successful\r\n".to_vec(),
            extensions,
        )),
        400..=499 => Err(BackendError::Protocol(text(&reply))),
        _ => Err(BackendError::Refused(text(&reply))),
    }
}

#[cfg(test)]
mod tests {
    use super::id_command;

    #[test]
    fn id_passes_the_clients_fields_but_not_its_x_fields() {
        let client = vec![
            (b"name".to_vec(), Some(b"Mail \"app\"".to_vec())),
            (b"version".to_vec(), None),
            (b"X-Originating-IP".to_vec(), Some(b"6.6.6.6".to_vec())),
            (b"os".to_vec(), Some(b"caf\xc3\xa9".to_vec())),
        ];
        let peer = "192.0.2.7:4242".parse().expect("addr");
        let local = "198.51.100.1:143".parse().expect("addr");
        let cmd = id_command(&client, Some((peer, local)), false).expect("an ID");
        assert_eq!(
            String::from_utf8_lossy(&cmd),
            "levee-id ID (\"name\" \"Mail \\\"app\\\"\" \"x-originating-ip\" \"192.0.2.7\" \"x-originating-port\" \"4242\" \"x-connected-ip\" \"198.51.100.1\" \"x-connected-port\" \"143\")\r\n"
        );
        // With LITERAL+, a non-ASCII value goes as a literal.
        let cmd = id_command(&client, None, true).expect("an ID");
        assert!(cmd.ends_with(b"\"os\" {5+}\r\ncaf\xc3\xa9)\r\n"));
        assert_eq!(id_command(&Vec::new(), None, true), None);
    }
}
