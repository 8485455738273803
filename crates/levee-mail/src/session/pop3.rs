//! POP3 before login (RFC 1939, 2449, 5034): CAPA, USER/PASS, AUTH
//! PLAIN/LOGIN, NOOP, QUIT, and STLS (RFC 2595) on a STARTTLS listener
//! before TLS. With `starttls = "required"`, CAPA offers neither USER nor
//! SASL and logins are refused until STLS.

use std::ops::ControlFlow;

use super::{
    Budget, ClientStream, Closing, Ctx, Denied, Io, LineLimits, PreAuth, SaslReplies, Step, Stop,
    TlsState, answer, finish, next_command, refusal_text, refuse, sasl_exchange, start_tls,
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

/// POP3 says nothing more when the error budget is spent.
const BYE: &[u8] = b"";

const LIMITS: LineLimits = LineLimits {
    unframed: b"",
    too_many_errors: BYE,
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
    // The name USER gave, for the PASS that follows.
    let mut user: Option<Vec<u8>> = None;
    loop {
        let parse = |buf: &[u8]| parse(buf, config.max_line);
        let reply = |e: &crate::pop3::Pop3Error| format!("-ERR {e}\r\n");
        let command = match next_command(io, &mut budget, parse, reply, &LIMITS).await? {
            Ok(command) => command,
            Err(ended) => return Ok(ended),
        };
        let step = match command {
            Command::Capa => answer(io, &capa(&ctx.tls)).await?,
            Command::Stls if ctx.tls.offered() => {
                io.send(b"+OK Begin TLS negotiation\r\n").await?;
                start_tls(io, &mut ctx.tls).await?;
                // RFC 2595 §4: the client starts over, USER included.
                user = None;
                ControlFlow::Continue(())
            }
            Command::User(_) | Command::Pass(_) | Command::Auth { .. }
                if ctx.tls.login_refused() =>
            {
                refuse(io, &mut budget, TLS_REQUIRED, BYE).await?
            }
            Command::Noop => answer(io, b"+OK\r\n").await?,
            Command::Quit => {
                io.send(b"+OK Bye\r\n").await?;
                ControlFlow::Break(PreAuth::Ended("quit"))
            }
            Command::User(u) => {
                user = Some(u);
                answer(io, b"+OK\r\n").await?
            }
            Command::Pass(pass) => match user.take() {
                Some(user) => {
                    let credentials = Credentials {
                        authzid: Vec::new(),
                        user,
                        pass,
                    };
                    login(io, ctx, &mut budget, credentials).await?
                }
                None => refuse(io, &mut budget, b"-ERR USER first\r\n", BYE).await?,
            },
            Command::Auth {
                mechanism: None, ..
            } => answer(io, b"+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n").await?,
            Command::Auth {
                mechanism: Some(m),
                initial,
            } => match sasl_exchange(io, &m, initial, config.max_line, &SASL).await? {
                Ok(credentials) => login(io, ctx, &mut budget, credentials).await?,
                Err(text) => refuse(io, &mut budget, text.as_bytes(), BYE).await?,
            },
            Command::Stls => {
                refuse(io, &mut budget, b"-ERR STLS is not available\r\n", BYE).await?
            }
            Command::Other(_) => {
                let text = b"-ERR Unknown command or not logged in\r\n";
                refuse(io, &mut budget, text, BYE).await?
            }
        };
        if let ControlFlow::Break(ended) = step {
            return Ok(ended);
        }
    }
}

/// USER and PASS's or AUTH's credentials: the session proxies from here,
/// or the refusal is answered and counted.
async fn login(
    io: &mut Io<ClientStream>,
    ctx: &mut Ctx,
    budget: &mut Budget,
    credentials: Credentials,
) -> Result<Step, Stop> {
    let text = match ctx.login(&credentials, Greet::Pop3, io.deadline).await {
        Ok(proxy) => return Ok(ControlFlow::Break(proxy)),
        Err(Denied::TooMany) => "-ERR [IN-USE] Too many sessions for this user.\r\n".to_owned(),
        Err(Denied::Refused { message, .. }) => {
            let text = refusal_text(&message, "Authentication failed.");
            format!("-ERR [AUTH] {text}\r\n")
        }
        Err(Denied::Unavailable) => {
            "-ERR [SYS/TEMP] Server temporarily unavailable, try again later.\r\n".to_owned()
        }
    };
    refuse(io, budget, text.as_bytes(), BYE).await
}

/// SASL over POP3 (`+ ` prompts, RFC 5034).
const SASL: SaslReplies = SaslReplies {
    prompt: "+ ",
    unsupported: "-ERR Unsupported mechanism\r\n",
    cancelled: "-ERR Authentication cancelled\r\n",
    invalid: "-ERR Invalid SASL response\r\n",
};
