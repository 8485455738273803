//! POP3 before login (RFC 1939, 2449, 5034): CAPA, USER/PASS, AUTH
//! PLAIN/LOGIN, NOOP, QUIT. STLS is refused until a TLS stream exists.

use tokio::io::{AsyncRead, AsyncWrite};

use super::{
    Budget, Closing, Ctx, Io, Outcome, PreAuth, SaslReplies, Stop, finish, refusal_text,
    sasl_exchange,
};
use crate::Parsed;
use crate::backend::Greet;
use crate::pop3::{Command, parse};
use crate::sasl::Credentials;

const CAPA: &[u8] =
    b"+OK Capability list follows\r\nUSER\r\nSASL PLAIN LOGIN\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n.\r\n";

const CLOSING: Closing = Closing {
    timeout: b"-ERR [SYS/TEMP] Timeout, closing\r\n",
    shutdown: b"-ERR [SYS/TEMP] Server shutting down\r\n",
};

pub(crate) async fn preauth<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut Io<S>,
    ctx: &mut Ctx,
) -> PreAuth {
    let result = run(io, ctx).await;
    finish(io, result, &CLOSING).await
}

async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut Io<S>,
    ctx: &mut Ctx,
) -> Result<PreAuth, Stop> {
    let config = ctx.state.config.clone();
    let greeting = config.greeting.as_deref().unwrap_or("levee ready");
    io.send(format!("+OK {greeting}\r\n").as_bytes()).await?;
    let mut budget = Budget::new(&config);
    let mut user: Option<Vec<u8>> = None;
    loop {
        let command = match parse(&io.buf, config.max_line) {
            Ok(Parsed::Incomplete) => {
                io.fill().await?;
                continue;
            }
            Ok(Parsed::Complete(c, used)) => {
                io.consume(used);
                c
            }
            Err((e, used)) => {
                io.send(format!("-ERR {e}\r\n").as_bytes()).await?;
                let Some(used) = used else {
                    return Ok(PreAuth::Ended("bad line"));
                };
                io.consume(used);
                if budget.error() {
                    return Ok(PreAuth::Ended("too many errors"));
                }
                continue;
            }
        };
        if budget.command() {
            io.send(b"-ERR Too many commands\r\n").await?;
            return Ok(PreAuth::Ended("too many commands"));
        }
        let credentials = match command {
            Command::Capa => {
                io.send(CAPA).await?;
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
                // TLS seam: upgrade here and drop `io.buf`.
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
