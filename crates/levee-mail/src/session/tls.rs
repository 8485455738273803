//! TLS in a session: the implicit handshake before the greeting, STARTTLS
//! in the middle of the pre-auth loop, and what the auth service is told of
//! either (`Auth-SSL*`).

use std::io;

use levee_config::model::StartTls;

use super::{ClientStream, Io, MailTls, Stop};
use crate::auth_http::SslInfo;

/// A session's first TLS step: the handshake on an implicit-TLS listener
/// (within `handshake_timeout` and the pre-auth deadline), or what STARTTLS
/// will offer. An error means the session is over.
pub(crate) async fn begin(
    io: &mut Io<ClientStream>,
    tls: Option<MailTls>,
    starttls: StartTls,
) -> io::Result<TlsState> {
    let mut state = TlsState::default();
    match (tls, starttls) {
        (Some(tls), StartTls::Off) => {
            let handshake = io.stream.handshake(&tls);
            match tokio::time::timeout_at(io.deadline, handshake).await {
                Ok(Ok(())) => state.info = Some(Box::new(ssl_info(&io.stream))),
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(io::ErrorKind::TimedOut.into()),
            }
        }
        (Some(tls), on) => {
            state.offer = Some(tls);
            state.required = on == StartTls::Required;
        }
        // A listener without certificates offers no STARTTLS (config
        // validation makes sure `starttls` is off there).
        (None, _) => {}
    }
    Ok(state)
}

/// Where a session stands with TLS.
#[derive(Debug, Default)]
pub(crate) struct TlsState {
    /// STARTTLS may still be asked for: a STARTTLS listener, before TLS.
    pub offer: Option<MailTls>,
    /// No login before TLS (`starttls = "required"`).
    pub required: bool,
    /// Set once TLS is up: what `auth_http` is told (`Auth-SSL*`).
    /// Boxed: the session keeps it (in its task) until it logs in.
    pub info: Option<Box<SslInfo>>,
}

impl TlsState {
    /// Logins are refused until STARTTLS.
    pub(crate) fn login_refused(&self) -> bool {
        self.required && self.info.is_none()
    }

    pub(crate) fn offered(&self) -> bool {
        self.offer.is_some()
    }
}

/// STARTTLS, once its positive reply is sent: drops the plaintext the client
/// pipelined behind the command (so it can never run as if sent over TLS),
/// then runs the handshake within the pre-auth deadline.
pub(crate) async fn start_tls(io: &mut Io<ClientStream>, tls: &mut TlsState) -> Result<(), Stop> {
    let Some(offer) = tls.offer.take() else {
        return Err(Stop::Handshake);
    };
    io.buf = Vec::new();
    let handshake = io.stream.handshake(&offer);
    match tokio::time::timeout_at(io.deadline, handshake).await {
        Ok(Ok(())) => {
            tls.info = Some(Box::new(ssl_info(&io.stream)));
            Ok(())
        }
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "STARTTLS handshake failed");
            Err(Stop::Handshake)
        }
        Err(_) => Err(Stop::Timeout),
    }
}

/// What `auth_http` learns of a TLS session, as nginx reports it.
fn ssl_info(stream: &ClientStream) -> SslInfo {
    let Some(tls) = stream.tls() else {
        return SslInfo::default();
    };
    match tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
        // rustls only finishes a handshake with a client certificate it verified.
        Some(cert) => crate::auth_http::client_cert_info(cert.as_ref()),
        None => SslInfo {
            verify: "NONE".to_owned(),
            ..SslInfo::default()
        },
    }
}
