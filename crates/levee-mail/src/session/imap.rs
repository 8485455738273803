//! IMAP before login: greeting, CAPABILITY, NOOP, ID, LOGOUT, LOGIN and
//! AUTHENTICATE PLAIN/LOGIN (with SASL-IR and `*` to cancel). Literals are
//! handled by the parser's rules: `{n}` gets a continuation, a refused
//! command's literal is discarded or the session closed, never read as a
//! command. STARTTLS (on a STARTTLS listener, before TLS) upgrades the
//! connection; with `starttls = "required"` the capabilities say
//! `LOGINDISABLED` and logins get `NO [PRIVACYREQUIRED]` until then.

use std::ops::ControlFlow;

use super::{
    Budget, ClientStream, Closing, Ctx, Denied, Io, PreAuth, SaslReplies, Step, Stop, TlsState,
    answer, finish, refusal_text, refuse, sasl_exchange, start_tls,
};
use crate::backend::Greet;
use crate::imap::command::IdParams;
use crate::imap::{Command, Discard, Limits, Next, Refusal, Tagged, parse};
use crate::sasl::Credentials;

/// What levee offers before login: STARTTLS only before TLS, and no
/// mechanism while logins wait for TLS (RFC 9051 §6.2.1).
fn capabilities(tls: &TlsState) -> String {
    let mut c = String::from("IMAP4rev1 SASL-IR LITERAL+ ID");
    if tls.offered() {
        c.push_str(" STARTTLS");
    }
    if tls.login_refused() {
        c.push_str(" LOGINDISABLED");
    } else {
        c.push_str(" AUTH=PLAIN AUTH=LOGIN");
    }
    c
}

/// After the refused command that spent the error budget.
const INVALID: &[u8] = b"* BYE Too many invalid commands\r\n";

const CLOSING: Closing = Closing {
    timeout: b"* BYE Autologout; idle for too long\r\n",
    shutdown: b"* BYE Server shutting down\r\n",
};

pub(crate) async fn preauth(io: &mut Io<ClientStream>, ctx: &mut Ctx) -> PreAuth {
    let result = run(io, ctx).await;
    finish(io, result, &CLOSING).await
}

async fn run(io: &mut Io<ClientStream>, ctx: &mut Ctx) -> Result<PreAuth, Stop> {
    let config = ctx.state.config.clone();
    let greeting = config.greeting.as_deref().unwrap_or("levee ready");
    let caps = capabilities(&ctx.tls);
    io.send(format!("* OK [CAPABILITY {caps}] {greeting}\r\n").as_bytes())
        .await?;
    let mut s = State {
        limits: Limits {
            max_literal: config.max_literal,
            max_line: config.max_line,
        },
        acked: 0,
        client_id: Vec::new(),
        asked_capability: false,
        budget: Budget::new(&config),
    };
    loop {
        let Tagged { tag, command } = match read_command(io, &mut s).await? {
            ControlFlow::Continue(tagged) => tagged,
            ControlFlow::Break(ended) => return Ok(ended),
        };
        if s.budget.command() {
            io.send(b"* BYE Too many commands before login\r\n").await?;
            return Ok(PreAuth::Ended("too many commands"));
        }
        let step = match command {
            Command::Capability => capability(io, ctx, &mut s, &tag).await?,
            Command::Noop => answer(io, &tagged(&tag, "OK NOOP completed.")).await?,
            Command::Logout => logout(io, &tag).await?,
            Command::Id(params) => id(io, ctx, &mut s, &tag, params).await?,
            Command::StartTls if ctx.tls.offered() => {
                io.send(&tagged(&tag, "OK Begin TLS negotiation now."))
                    .await?;
                start_tls(io, &mut ctx.tls).await?;
                ControlFlow::Continue(())
            }
            Command::Login { .. } | Command::Authenticate { .. } if ctx.tls.login_refused() => {
                let text = "NO [PRIVACYREQUIRED] TLS is required to log in: use STARTTLS.";
                refuse(io, &mut s.budget, &tagged(&tag, text), INVALID).await?
            }
            Command::StartTls => {
                let text = tagged(&tag, "BAD STARTTLS is not available");
                refuse(io, &mut s.budget, &text, INVALID).await?
            }
            Command::Login { user, pass } => {
                let credentials = Credentials {
                    authzid: Vec::new(),
                    user,
                    pass,
                };
                login(io, ctx, &mut s, &tag, credentials).await?
            }
            Command::Authenticate { mechanism, initial } => {
                match sasl_exchange(io, &mechanism, initial, config.max_line, &SASL).await? {
                    Ok(credentials) => login(io, ctx, &mut s, &tag, credentials).await?,
                    Err(text) => refuse(io, &mut s.budget, &tagged(&tag, text), INVALID).await?,
                }
            }
        };
        if let ControlFlow::Break(ended) = step {
            return Ok(ended);
        }
    }
}

/// What the pre-auth stage keeps from one command to the next.
struct State {
    limits: Limits,
    /// Where the literal the client was told to send (`+ Ready`) starts.
    acked: usize,
    /// What the client said in its last ID, passed on to the backend.
    client_id: IdParams,
    /// Whether it asked CAPABILITY: the backend is asked too (backend.rs).
    asked_capability: bool,
    budget: Budget,
}

/// The next command, reading more and inviting literals as the parser
/// asks. A command that does not parse is answered here, and may end the
/// session (`Break`).
async fn read_command(
    io: &mut Io<ClientStream>,
    s: &mut State,
) -> Result<ControlFlow<PreAuth, Tagged>, Stop> {
    loop {
        match parse(&io.buf, s.acked, &s.limits) {
            Ok(Next::Incomplete) => io.fill().await?,
            Ok(Next::Continue { at }) => {
                s.acked = at;
                io.send(b"+ Ready for literal data\r\n").await?;
            }
            Ok(Next::Command(tagged, used)) => {
                io.consume(used);
                s.acked = 0;
                return Ok(ControlFlow::Continue(tagged));
            }
            // Answered once the whole refused command has arrived.
            Err(refusal) if refusal.discard == Discard::NeedMore => io.fill().await?,
            Err(refusal) => {
                if let ControlFlow::Break(ended) = unparsable(io, s, refusal).await? {
                    return Ok(ControlFlow::Break(ended));
                }
            }
        }
    }
}

/// Answers a command that does not parse and drops it; the session ends
/// if its end cannot be found, or if that spent the error budget.
async fn unparsable(
    io: &mut Io<ClientStream>,
    s: &mut State,
    refusal: Refusal,
) -> Result<Step, Stop> {
    let tag = refusal.tag.as_deref().unwrap_or(b"*");
    io.send(&tagged(tag, &format!("BAD [CLIENTBUG] {}", refusal.error)))
        .await?;
    let over = s.budget.error();
    match refusal.discard {
        Discard::Bytes(n) => {
            io.consume(n);
            s.acked = 0;
        }
        Discard::NeedMore | Discard::Close => {
            io.send(b"* BYE Cannot tell where that command ends\r\n")
                .await?;
            return Ok(ControlFlow::Break(PreAuth::Ended("unparsable command")));
        }
    }
    if over {
        io.send(INVALID).await?;
        return Ok(ControlFlow::Break(PreAuth::Ended("too many errors")));
    }
    Ok(ControlFlow::Continue(()))
}

/// `tag text`, a line of its own.
fn tagged(tag: &[u8], text: &str) -> Vec<u8> {
    let mut r = tag.to_vec();
    r.push(b' ');
    r.extend_from_slice(text.as_bytes());
    r.extend_from_slice(b"\r\n");
    r
}

async fn capability(
    io: &mut Io<ClientStream>,
    ctx: &Ctx,
    s: &mut State,
    tag: &[u8],
) -> Result<Step, Stop> {
    s.asked_capability = true;
    let caps = capabilities(&ctx.tls);
    let mut r = format!("* CAPABILITY {caps}\r\n").into_bytes();
    r.extend(tagged(tag, "OK Capability completed."));
    answer(io, &r).await
}

async fn logout(io: &mut Io<ClientStream>, tag: &[u8]) -> Result<Step, Stop> {
    let mut r = b"* BYE Logging out\r\n".to_vec();
    r.extend(tagged(tag, "OK Logout completed."));
    io.send(&r).await?;
    Ok(ControlFlow::Break(PreAuth::Ended("logout")))
}

/// ID: what the client says it is goes to the session's log, and to the
/// backend once logged in.
async fn id(
    io: &mut Io<ClientStream>,
    ctx: &Ctx,
    s: &mut State,
    tag: &[u8],
    params: IdParams,
) -> Result<Step, Stop> {
    let name = params
        .iter()
        .find(|(f, _)| f.eq_ignore_ascii_case(b"name"))
        .and_then(|(_, v)| v.as_deref())
        .map(String::from_utf8_lossy);
    tracing::debug!(peer = %ctx.peer, client = ?name, "IMAP ID");
    s.client_id = params;
    let mut r = b"* ID (\"name\" \"levee\")\r\n".to_vec();
    r.extend(tagged(tag, "OK ID completed."));
    answer(io, &r).await
}

/// LOGIN or AUTHENTICATE's credentials: the session proxies from here, or
/// the refusal is answered and counted.
async fn login(
    io: &mut Io<ClientStream>,
    ctx: &mut Ctx,
    s: &mut State,
    tag: &[u8],
    credentials: Credentials,
) -> Result<Step, Stop> {
    let greet = Greet::Imap {
        tag,
        id: &s.client_id,
        asked_capability: s.asked_capability,
    };
    let text = match ctx.login(&credentials, greet, io.deadline).await {
        Ok(proxy) => return Ok(ControlFlow::Break(proxy)),
        Err(Denied::TooMany) => "NO [LIMIT] Too many sessions for this user.".to_owned(),
        Err(Denied::Refused { message, .. }) => {
            let text = refusal_text(&message, "Authentication failed.");
            format!("NO [AUTHENTICATIONFAILED] {text}")
        }
        Err(Denied::Unavailable) => {
            "NO [UNAVAILABLE] Server temporarily unavailable, try again later.".to_owned()
        }
    };
    let bye = b"* BYE Too many failed logins\r\n";
    refuse(io, &mut s.budget, &tagged(tag, &text), bye).await
}

const SASL: SaslReplies = SaslReplies {
    prompt: "+ ",
    unsupported: "NO [CANNOT] Unsupported authentication mechanism.",
    cancelled: "BAD Authentication cancelled.",
    invalid: "BAD [CLIENTBUG] Invalid SASL response.",
};
