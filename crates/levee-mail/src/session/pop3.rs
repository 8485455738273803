//! POP3 before login (RFC 1939, 2449, 5034): CAPA, USER/PASS, AUTH
//! PLAIN/LOGIN, NOOP, QUIT, and STLS (RFC 2595) on a STARTTLS listener
//! before TLS. With `starttls = "required"`, CAPA offers neither USER nor
//! SASL and logins are refused until STLS.

use super::{
    Budget, ClientStream, Closing, Ctx, Io, LineLimits, Outcome, PreAuth, SaslReplies, Stop,
    TlsState, finish, next_command, refusal_text, sasl_exchange, start_tls,
};
use crate::backend::Greet;
use crate::pop3::{Command, parse};
use crate::sasl::Credentials;

/// The CAPA reply: STLS only before TLS, no login methods while logins wait for it.
fn capa(tls: &TlsState) -> Vec<u8> {
    let mut c = b"+OK Capability list follows\r\n".to_vec();
    if !tls.login_refused() {
        c.extend_from_slice(b"USER\r\nSASL PLAIN LOGIN\r\n");
    }
    if tls.offered() {
        c.extend_from_slice(b"STLS\r\n");
    }
    c.extend_from_slice(b"RESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n.\r\n");
    c
}

/// A login before TLS on a listener that requires it.
const TLS_REQUIRED: &[u8] = b"-ERR [AUTH] TLS required before authentication: use STLS\r\n";

const LIMITS: LineLimits = LineLimits {
    unframed: b"",
    too_many_errors: b"",
    too_many_commands: b"-ERR Too many commands\r\n",
};

const CLOSING: Closing = Closing {
    timeout: b"-ERR [SYS/TEMP] Timeout, closing\r\n",
    shutdown: b"-ERR [SYS/TEMP] Server shutting down\r\n",
};

pub(crate) async fn preauth(io: &mut Io<ClientStream>, ctx: &mut Ctx) -> PreAuth {
    let result = run(io, ctx).await;
    finish(io, result, &CLOSING).await
}

async fn run(io: &mut Io<ClientStream>, ctx: &mut Ctx) -> Result<PreAuth, Stop> {
    let config = ctx.state.config.clone();
    let greeting = config.greeting.as_deref().unwrap_or("levee ready");
    io.send(format!("+OK {greeting}\r\n").as_bytes()).await?;
    let mut budget = Budget::new(&config);
    let mut user: Option<Vec<u8>> = None;
    loop {
        let parse = |buf: &[u8]| parse(buf, config.max_line);
        let reply = |e: &crate::pop3::Pop3Error| format!("-ERR {e}\r\n");
        let command = match next_command(io, &mut budget, parse, reply, &LIMITS).await? {
            Ok(command) => command,
            Err(ended) => return Ok(ended),
        };
        let credentials = match command {
            Command::Capa => {
                io.send(&capa(&ctx.tls)).await?;
                continue;
            }
            Command::Stls if ctx.tls.offered() => {
                io.send(b"+OK Begin TLS negotiation\r\n").await?;
                start_tls(io, &mut ctx.tls).await?;
                // RFC 2595 §4: the client starts over, USER included.
                user = None;
                continue;
            }
            Command::User(_) | Command::Pass(_) | Command::Auth { .. }
                if ctx.tls.login_refused() =>
            {
                io.send(TLS_REQUIRED).await?;
                if budget.error() {
                    return Ok(PreAuth::Ended("too many errors"));
                }
                continue;
            }
            Command::Noop => {
                io.send(b"+OK\r\n").await?;
                continue;
            }
            Command::Quit => {
                io.send(b"+OK Bye\r\n").await?;
                return Ok(PreAuth::Ended("quit"));
            }
            Command::User(u) => {
                user = Some(u);
                io.send(b"+OK\r\n").await?;
                continue;
            }
            Command::Pass(pass) => match user.take() {
                Some(user) => Credentials {
                    authzid: Vec::new(),
                    user,
                    pass,
                },
                None => {
                    io.send(b"-ERR USER first\r\n").await?;
                    if budget.error() {
                        return Ok(PreAuth::Ended("too many errors"));
                    }
                    continue;
                }
            },
            Command::Auth {
                mechanism: None, ..
            } => {
                io.send(b"+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n").await?;
                continue;
            }
            Command::Auth {
                mechanism: Some(m),
                initial,
            } => match sasl_exchange(io, &m, initial, config.max_line, &SASL).await? {
                Ok(c) => c,
                Err(text) => {
                    io.send(text.as_bytes()).await?;
                    if budget.error() {
                        return Ok(PreAuth::Ended("too many errors"));
                    }
                    continue;
                }
            },
            Command::Stls => {
                io.send(b"-ERR STLS is not available\r\n").await?;
                if budget.error() {
                    return Ok(PreAuth::Ended("too many errors"));
                }
                continue;
            }
            Command::Other(_) => {
                io.send(b"-ERR Unknown command or not logged in\r\n")
                    .await?;
                if budget.error() {
                    return Ok(PreAuth::Ended("too many errors"));
                }
                continue;
            }
        };
        let name = String::from_utf8_lossy(&credentials.user).into_owned();
        match ctx.login(&credentials, Greet::Pop3).await {
            Outcome::Proxy(backend, slot) => {
                return Ok(PreAuth::Proxy {
                    backend,
                    user: name,
                    slot,
                });
            }
            Outcome::TooMany => {
                io.send(b"-ERR [IN-USE] Too many sessions for this user.\r\n")
                    .await?;
            }
            Outcome::Refused { message, .. } => {
                let text = refusal_text(&message, "Authentication failed.");
                io.send(format!("-ERR [AUTH] {text}\r\n").as_bytes())
                    .await?;
            }
            Outcome::Unavailable => {
                io.send(b"-ERR [SYS/TEMP] Server temporarily unavailable, try again later.\r\n")
                    .await?;
            }
        }
        if budget.error() {
            return Ok(PreAuth::Ended("too many errors"));
        }
    }
}

/// SASL over POP3 (`+ ` prompts, RFC 5034).
const SASL: SaslReplies = SaslReplies {
    prompt: "+ ",
    unsupported: "-ERR Unsupported mechanism\r\n",
    cancelled: "-ERR Authentication cancelled\r\n",
    invalid: "-ERR Invalid SASL response\r\n",
};
