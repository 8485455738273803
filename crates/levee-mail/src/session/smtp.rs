//! SMTP submission before AUTH (RFC 6409, 4954): EHLO/HELO (offering what
//! the backends offer, as far as levee can on their behalf), AUTH
//! PLAIN/LOGIN, RSET, NOOP, QUIT; MAIL (and any other mail transaction
//! command) gets `530 5.7.0` until the client is authenticated. STARTTLS
//! (RFC 3207) is offered on a STARTTLS listener before TLS; with
//! `starttls = "required"` EHLO offers no AUTH and AUTH gets `538 5.7.11`
//! until then.

use super::{
    Budget, ClientStream, Closing, Ctx, Io, LineLimits, Outcome, PreAuth, SaslReplies, Stop,
    TlsState, finish, next_command, refusal_text, sasl_exchange, start_tls,
};
use crate::backend::Greet;
use crate::sasl::Credentials;
use crate::smtp::{Command, Extensions, parse};

const LIMITS: LineLimits = LineLimits {
    unframed: b"421 4.7.0 Closing connection\r\n",
    too_many_errors: b"421 4.7.0 Too many errors\r\n",
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
    let mut helo: Vec<u8> = Vec::new();
    loop {
        let reply = |e: &crate::smtp::SmtpError| format!("{}\r\n", e.reply());
        let command = match next_command(io, &mut budget, parse, reply, &LIMITS).await? {
            Ok(command) => command,
            Err(ended) => return Ok(ended),
        };
        let mut refuse: Option<&[u8]> = None;
        let credentials = match command {
            Command::Ehlo(domain) => {
                helo = domain;
                let extensions = ctx.front.smtp_extensions(&config);
                io.send(&ehlo(&ctx.tls, &extensions)).await?;
                continue;
            }
            Command::Helo(domain) => {
                helo = domain;
                io.send(b"250 levee\r\n").await?;
                continue;
            }
            Command::Rset | Command::Noop => {
                io.send(b"250 2.0.0 OK\r\n").await?;
                continue;
            }
            Command::Quit => {
                io.send(b"221 2.0.0 Bye\r\n").await?;
                return Ok(PreAuth::Ended("quit"));
            }
            Command::StartTls if ctx.tls.offered() => {
                io.send(b"220 2.0.0 Ready to start TLS\r\n").await?;
                start_tls(io, &mut ctx.tls).await?;
                // RFC 3207 §4.2: forget what the client said before; it says EHLO again.
                helo.clear();
                continue;
            }
            Command::Auth { .. } if ctx.tls.login_refused() => {
                refuse = Some(
                    b"538 5.7.11 Encryption required for requested authentication mechanism\r\n",
                );
                Credentials::empty()
            }
            Command::Auth { mechanism, initial } => {
                let replies = SaslReplies {
                    prompt: "334 ",
                    unsupported: "504 5.5.4 Unrecognized authentication type\r\n",
                    cancelled: "501 5.0.0 Authentication cancelled\r\n",
                    invalid: "501 5.5.2 Invalid SASL response\r\n",
                };
                match sasl_exchange(io, &mechanism, initial, config.max_line, &replies).await? {
                    Ok(c) => c,
                    Err(text) => {
                        refuse = Some(text.as_bytes());
                        Credentials::empty()
                    }
                }
            }
            Command::StartTls => {
                refuse = Some(b"502 5.5.1 STARTTLS is not available\r\n");
                Credentials::empty()
            }
            Command::Mail => {
                refuse = Some(b"530 5.7.0 Authentication required\r\n");
                Credentials::empty()
            }
            Command::Other(_) => {
                refuse = Some(b"502 5.5.2 Command not recognized or not allowed before AUTH\r\n");
                Credentials::empty()
            }
        };
        if let Some(text) = refuse {
            io.send(text).await?;
            if budget.error() {
                io.send(b"421 4.7.0 Too many errors\r\n").await?;
                return Ok(PreAuth::Ended("too many errors"));
            }
            continue;
        }
        let name = String::from_utf8_lossy(&credentials.user).into_owned();
        match ctx.login(&credentials, Greet::Smtp { helo: &helo }).await {
            Outcome::Proxy(backend, slot) => {
                return Ok(PreAuth::Proxy {
                    backend,
                    user: name,
                    slot,
                });
            }
            Outcome::TooMany => {
                io.send(b"454 4.7.0 Too many sessions for this user\r\n")
                    .await?;
            }
            Outcome::Refused { message, smtp_code } => {
                let text = refusal_text(&message, "Authentication credentials invalid");
                let code = reply_code(smtp_code.as_deref());
                io.send(format!("{code} {text}\r\n").as_bytes()).await?;
            }
            Outcome::Unavailable => {
                io.send(b"454 4.7.0 Temporary authentication failure\r\n")
                    .await?;
            }
        }
        if budget.error() {
            io.send(b"421 4.7.0 Too many errors\r\n").await?;
            return Ok(PreAuth::Ended("too many errors"));
        }
    }
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
