//! IMAP before login: greeting, CAPABILITY, NOOP, ID, LOGOUT, LOGIN and
//! AUTHENTICATE PLAIN/LOGIN (with SASL-IR and `*` to cancel). Literals are
//! handled by the parser's rules: `{n}` gets a continuation, a refused
//! command's literal is discarded or the session closed, never read as a
//! command. STARTTLS (on a STARTTLS listener, before TLS) upgrades the
//! connection; with `starttls = "required"` the capabilities say
//! `LOGINDISABLED` and logins get `NO [PRIVACYREQUIRED]` until then.

use super::{
    Budget, ClientStream, Closing, Ctx, Io, Outcome, PreAuth, SaslReplies, Stop, TlsState, finish,
    refusal_text, sasl_exchange, start_tls,
};
use crate::backend::Greet;
use crate::imap::{Command, Discard, Limits, Next, parse};
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
    let limits = Limits {
        max_literal: config.max_literal,
        max_line: config.max_line,
    };
    let mut acked = 0usize;
    // What the client said in its last ID, passed on to the backend.
    let mut client_id = Vec::new();
    // Whether it asked CAPABILITY: the backend is asked too (backend.rs).
    let mut asked_capability = false;
    let mut budget = Budget::new(&config);
    loop {
        let tagged = match parse(&io.buf, acked, &limits) {
            Ok(Next::Incomplete) => {
                io.fill().await?;
                continue;
            }
            Ok(Next::Continue { at }) => {
                acked = at;
                io.send(b"+ Ready for literal data\r\n").await?;
                continue;
            }
            Ok(Next::Command(tagged, used)) => {
                io.consume(used);
                acked = 0;
                tagged
            }
            Err(refusal) => {
                if refusal.discard == Discard::NeedMore {
                    // Answer once the whole refused command has arrived.
                    io.fill().await?;
                    continue;
                }
                let tag = refusal.tag.as_deref().unwrap_or(b"*");
                let mut reply = tag.to_vec();
                reply.extend_from_slice(
                    format!(" BAD [CLIENTBUG] {}\r\n", refusal.error).as_bytes(),
                );
                io.send(&reply).await?;
                let over = budget.error();
                match refusal.discard {
                    Discard::Bytes(n) => {
                        io.consume(n);
                        acked = 0;
                    }
                    Discard::NeedMore | Discard::Close => {
                        io.send(b"* BYE Cannot tell where that command ends\r\n")
                            .await?;
                        return Ok(PreAuth::Ended("unparsable command"));
                    }
                }
                if over {
                    io.send(b"* BYE Too many invalid commands\r\n").await?;
                    return Ok(PreAuth::Ended("too many errors"));
                }
                continue;
            }
        };
        if budget.command() {
            io.send(b"* BYE Too many commands before login\r\n").await?;
            return Ok(PreAuth::Ended("too many commands"));
        }
        let tag = tagged.tag;
        let reply = |text: &str| {
            let mut r = tag.clone();
            r.push(b' ');
            r.extend_from_slice(text.as_bytes());
            r.extend_from_slice(b"\r\n");
            r
        };
        let credentials = match tagged.command {
            Command::Capability => {
                asked_capability = true;
                let caps = capabilities(&ctx.tls);
                let mut r = format!("* CAPABILITY {caps}\r\n").into_bytes();
                r.extend(reply("OK Capability completed."));
                io.send(&r).await?;
                continue;
            }
            Command::Noop => {
                io.send(&reply("OK NOOP completed.")).await?;
                continue;
            }
            Command::Logout => {
                let mut r = b"* BYE Logging out\r\n".to_vec();
                r.extend(reply("OK Logout completed."));
                io.send(&r).await?;
                return Ok(PreAuth::Ended("logout"));
            }
            Command::Id(params) => {
                // What the client says it is goes to the session's log.
                let name = params
                    .iter()
                    .find(|(f, _)| f.eq_ignore_ascii_case(b"name"))
                    .and_then(|(_, v)| v.as_deref())
                    .map(String::from_utf8_lossy);
                tracing::debug!(peer = %ctx.peer, client = ?name, "IMAP ID");
                client_id = params;
                let mut r = b"* ID (\"name\" \"levee\")\r\n".to_vec();
                r.extend(reply("OK ID completed."));
                io.send(&r).await?;
                continue;
            }
            Command::StartTls if ctx.tls.offered() => {
                io.send(&reply("OK Begin TLS negotiation now.")).await?;
                start_tls(io, &mut ctx.tls).await?;
                continue;
            }
            Command::Login { .. } | Command::Authenticate { .. } if ctx.tls.login_refused() => {
                io.send(&reply(
                    "NO [PRIVACYREQUIRED] TLS is required to log in: use STARTTLS.",
                ))
                .await?;
                if budget.error() {
                    io.send(b"* BYE Too many invalid commands\r\n").await?;
                    return Ok(PreAuth::Ended("too many errors"));
                }
                continue;
            }
            Command::StartTls => {
                io.send(&reply("BAD STARTTLS is not available")).await?;
                if budget.error() {
                    io.send(b"* BYE Too many invalid commands\r\n").await?;
                    return Ok(PreAuth::Ended("too many errors"));
                }
                continue;
            }
            Command::Login { user, pass } => Credentials {
                authzid: Vec::new(),
                user,
                pass,
            },
            Command::Authenticate { mechanism, initial } => {
                match sasl_exchange(io, &mechanism, initial, config.max_line, &SASL).await? {
                    Ok(c) => c,
                    Err(text) => {
                        io.send(&reply(text)).await?;
                        if budget.error() {
                            io.send(b"* BYE Too many invalid commands\r\n").await?;
                            return Ok(PreAuth::Ended("too many errors"));
                        }
                        continue;
                    }
                }
            }
        };
        let user = String::from_utf8_lossy(&credentials.user).into_owned();
        let greet = Greet::Imap {
            tag: &tag,
            id: &client_id,
            asked_capability,
        };
        match ctx.login(&credentials, greet).await {
            Outcome::Proxy(backend, slot) => {
                return Ok(PreAuth::Proxy {
                    backend,
                    user,
                    slot,
                });
            }
            Outcome::TooMany => {
                io.send(&reply("NO [LIMIT] Too many sessions for this user."))
                    .await?;
            }
            Outcome::Refused { message, .. } => {
                let text = refusal_text(&message, "Authentication failed.");
                io.send(&reply(&format!("NO [AUTHENTICATIONFAILED] {text}")))
                    .await?;
            }
            Outcome::Unavailable => {
                io.send(&reply(
                    "NO [UNAVAILABLE] Server temporarily unavailable, try again later.",
                ))
                .await?;
            }
        }
        if budget.error() {
            io.send(b"* BYE Too many failed logins\r\n").await?;
            return Ok(PreAuth::Ended("too many errors"));
        }
    }
}

const SASL: SaslReplies = SaslReplies {
    prompt: "+ ",
    unsupported: "NO [CANNOT] Unsupported authentication mechanism.",
    cancelled: "BAD Authentication cancelled.",
    invalid: "BAD [CLIENTBUG] Invalid SASL response.",
};
