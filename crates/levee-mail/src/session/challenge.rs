//! The SASL exchange all three protocols share: PLAIN or LOGIN, with or
//! without an initial response, `*` to cancel; only the prompt and the
//! refusal texts differ.

use tokio::io::{AsyncRead, AsyncWrite};

use super::{Io, Stop};
use crate::sasl::{self, Credentials, Mechanism, Response};

/// The replies a SASL exchange can end with, in a protocol's words.
pub(crate) struct SaslReplies {
    /// Before each challenge: `+ ` (IMAP, POP3) or `334 ` (SMTP).
    pub prompt: &'static str,
    pub unsupported: &'static str,
    pub cancelled: &'static str,
    pub invalid: &'static str,
}

/// PLAIN or LOGIN, with or without an initial response; `*` cancels.
pub(crate) async fn sasl_exchange<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut Io<S>,
    mechanism: &[u8],
    initial: Option<Vec<u8>>,
    max_line: usize,
    replies: &SaslReplies,
) -> Result<Result<Credentials, &'static str>, Stop> {
    let Some(mechanism) = Mechanism::from_name(mechanism) else {
        return Ok(Err(replies.unsupported));
    };
    let respond = async |io: &mut Io<S>, challenge: &str, given: Option<Vec<u8>>| {
        let line = match given {
            Some(l) => l,
            None => {
                io.send(format!("{}{challenge}\r\n", replies.prompt).as_bytes())
                    .await?;
                match io.line(max_line).await? {
                    Ok(l) => l,
                    Err(_) => return Ok(Err(replies.invalid)),
                }
            }
        };
        Ok(match sasl::response(&line) {
            Ok(Response::Data(d)) => Ok(d),
            Ok(Response::Cancel) => Err(replies.cancelled),
            Err(_) => Err(replies.invalid),
        })
    };
    match mechanism {
        Mechanism::Plain => {
            let message = match respond(io, "", initial).await? {
                Ok(m) => m,
                Err(e) => return Ok(Err(e)),
            };
            Ok(sasl::plain(&message).map_err(|_| replies.invalid))
        }
        Mechanism::Login => {
            let user = match respond(io, sasl::LOGIN_USERNAME, initial).await? {
                Ok(u) => u,
                Err(e) => return Ok(Err(e)),
            };
            let pass = match respond(io, sasl::LOGIN_PASSWORD, None).await? {
                Ok(p) => p,
                Err(e) => return Ok(Err(e)),
            };
            if user.is_empty() {
                return Ok(Err(replies.invalid));
            }
            Ok(Ok(Credentials {
                authzid: Vec::new(),
                user,
                pass,
            }))
        }
    }
}
