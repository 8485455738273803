//! SMTP submission before AUTH (RFC 6409, 4954): EHLO/HELO (offering what
//! the backends offer, as far as levee can on their behalf), AUTH
//! PLAIN/LOGIN, RSET, NOOP, QUIT; MAIL (and any other mail transaction
//! command) gets `530 5.7.0` until the client is authenticated. STARTTLS
//! (RFC 3207) is offered on a STARTTLS listener before TLS; with
//! `starttls = "required"` EHLO offers no AUTH and AUTH gets `538 5.7.11`
//! until then.

use std::ops::ControlFlow;

use super::{
    Budget, ClientStream, Closing, Ctx, Denied, Io, LineLimits, PreAuth, SaslReplies, Step, Stop,
    TlsState, answer, finish, next_command, refusal_text, refuse, sasl_exchange, start_tls,
};
use crate::backend::Greet;
use crate::sasl::Credentials;
use crate::smtp::{Command, Extensions, parse};

/// After the refusal that spent the error budget.
const BYE: &[u8] = b"421 4.7.0 Too many errors\r\n";

const LIMITS: LineLimits = LineLimits {
    unframed: b"421 4.7.0 Closing connection\r\n",
    too_many_errors: BYE,
    too_many_commands: b"421 4.7.0 Too many commands\r\n",
};

const CLOSING: Closing = Closing {
    timeout: b"421 4.4.2 Timeout exceeded, closing connection\r\n",
    shutdown: b"421 4.3.2 Service shutting down\r\n",
};

/// The EHLO reply: the backends' safe extensions (`Frontend::smtp_extensions`),
/// STARTTLS only before TLS, AUTH only once logins are allowed.
fn ehlo(tls: &TlsState, extensions: &Extensions) -> Vec<u8> {
    let mut r = b"250-levee\r\n".to_vec();
    extensions.write_ehlo_lines(&mut r);
    if tls.offered() {
        r.extend_from_slice(b"250-STARTTLS\r\n");
    }
    if tls.login_refused() {
        r.extend_from_slice(b"250 ENHANCEDSTATUSCODES\r\n");
    } else {
        r.extend_from_slice(b"250-ENHANCEDSTATUSCODES\r\n250 AUTH PLAIN LOGIN\r\n");
    }
    r
}

pub(crate) async fn preauth(io: &mut Io<ClientStream>, ctx: &mut Ctx) -> PreAuth {
    let result = run(io, ctx).await;
    finish(io, result, &CLOSING).await
}

async fn run(io: &mut Io<ClientStream>, ctx: &mut Ctx) -> Result<PreAuth, Stop> {
    let config = ctx.state.config.clone();
    let greeting = config.greeting.as_deref().unwrap_or("levee ready");
    io.send(format!("220 {greeting} ESMTP\r\n").as_bytes())
        .await?;
    let mut budget = Budget::new(&config);
    // The client's EHLO or HELO name, for the auth service and the backend.
    let mut helo: Vec<u8> = Vec::new();
    loop {
        let reply = |e: &crate::smtp::SmtpError| format!("{}\r\n", e.reply());
        let command = match next_command(io, &mut budget, parse, reply, &LIMITS).await? {
            Ok(command) => command,
            Err(ended) => return Ok(ended),
        };
        let step = match command {
            Command::Ehlo(domain) => {
                helo = domain;
                let extensions = ctx.front.smtp_extensions(&config);
                answer(io, &ehlo(&ctx.tls, &extensions)).await?
            }
            Command::Helo(domain) => {
                helo = domain;
                answer(io, b"250 levee\r\n").await?
            }
            Command::Rset | Command::Noop => answer(io, b"250 2.0.0 OK\r\n").await?,
            Command::Quit => {
                io.send(b"221 2.0.0 Bye\r\n").await?;
                ControlFlow::Break(PreAuth::Ended("quit"))
            }
            Command::StartTls if ctx.tls.offered() => {
                io.send(b"220 2.0.0 Ready to start TLS\r\n").await?;
                start_tls(io, &mut ctx.tls).await?;
                // RFC 3207 §4.2: forget what the client said before; it says EHLO again.
                helo.clear();
                ControlFlow::Continue(())
            }
            // RFC 4954 §4: AUTH only after EHLO (again after STARTTLS), as
            // Postfix answers; the auth service never sees an empty HELO.
            Command::Auth { .. } if helo.is_empty() => {
                refuse(io, &mut budget, b"503 5.5.1 Send EHLO first\r\n", BYE).await?
            }
            Command::Auth { .. } if ctx.tls.login_refused() => {
                let text =
                    b"538 5.7.11 Encryption required for requested authentication mechanism\r\n";
                refuse(io, &mut budget, text, BYE).await?
            }
            Command::Auth { mechanism, initial } => {
                match sasl_exchange(io, &mechanism, initial, config.max_line, &SASL).await? {
                    Ok(credentials) => login(io, ctx, &mut budget, &helo, credentials).await?,
                    Err(text) => refuse(io, &mut budget, text.as_bytes(), BYE).await?,
                }
            }
            Command::StartTls => {
                refuse(
                    io,
                    &mut budget,
                    b"502 5.5.1 STARTTLS is not available\r\n",
                    BYE,
                )
                .await?
            }
            Command::Mail => {
                refuse(
                    io,
                    &mut budget,
                    b"530 5.7.0 Authentication required\r\n",
                    BYE,
                )
                .await?
            }
            Command::Other(_) => {
                let text = b"502 5.5.2 Command not recognized or not allowed before AUTH\r\n";
                refuse(io, &mut budget, text, BYE).await?
            }
        };
        if let ControlFlow::Break(ended) = step {
            return Ok(ended);
        }
    }
}

/// SASL over SMTP (`334 ` prompts, RFC 4954).
const SASL: SaslReplies = SaslReplies {
    prompt: "334 ",
    unsupported: "504 5.5.4 Unrecognized authentication type\r\n",
    cancelled: "501 5.0.0 Authentication cancelled\r\n",
    invalid: "501 5.5.2 Invalid SASL response\r\n",
};

/// AUTH's credentials: the session proxies from here, or the refusal is
/// answered and counted.
async fn login(
    io: &mut Io<ClientStream>,
    ctx: &mut Ctx,
    budget: &mut Budget,
    helo: &[u8],
    credentials: Credentials,
) -> Result<Step, Stop> {
    let text = match ctx
        .login(&credentials, Greet::Smtp { helo }, io.deadline)
        .await
    {
        Ok(proxy) => return Ok(ControlFlow::Break(proxy)),
        Err(Denied::TooMany) => "454 4.7.0 Too many sessions for this user\r\n".to_owned(),
        Err(Denied::Refused { message, smtp_code }) => {
            let text = refusal_text(&message, "Authentication credentials invalid");
            let code = reply_code(smtp_code.as_deref());
            format!("{code} {text}\r\n")
        }
        Err(Denied::Unavailable) => "454 4.7.0 Temporary authentication failure\r\n".to_owned(),
    };
    refuse(io, budget, text.as_bytes(), BYE).await
}

/// The reply code for a refused AUTH: the auth service's `Auth-Error-Code`
/// (`535` or `535 5.7.0`, as nginx takes it) when well formed, else `535 5.7.8`.
fn reply_code(given: Option<&str>) -> String {
    let Some(code) = given else {
        return "535 5.7.8".to_owned();
    };
    let (basic, enhanced) = code.split_once(' ').unwrap_or((code, ""));
    let basic_ok = basic.len() == 3
        && basic.starts_with(['4', '5'])
        && basic.bytes().all(|b| b.is_ascii_digit());
    let enhanced_ok = enhanced.is_empty()
        || (enhanced.len() <= 9
            && enhanced.split('.').count() == 3
            && enhanced
                .split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())));
    match (basic_ok, enhanced_ok, enhanced.is_empty()) {
        (true, true, true) => format!("{basic} 5.7.8"),
        (true, true, false) => code.to_owned(),
        _ => "535 5.7.8".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::reply_code;

    #[test]
    fn auth_error_codes() {
        assert_eq!(reply_code(None), "535 5.7.8");
        assert_eq!(reply_code(Some("535")), "535 5.7.8");
        assert_eq!(reply_code(Some("454 4.7.0")), "454 4.7.0");
        assert_eq!(reply_code(Some("250 2.0.0")), "535 5.7.8");
        assert_eq!(reply_code(Some("535 x\r\n250")), "535 5.7.8");
    }
}
