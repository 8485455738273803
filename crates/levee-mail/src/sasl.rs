//! SASL PLAIN (RFC 4616) and LOGIN, the two mechanisms levee accepts and
//! relays. Credentials live only in memory and are never logged; their
//! `Debug` output hides the password.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Login,
}

impl Mechanism {
    /// From an upper-cased mechanism name.
    pub fn from_name(name: &[u8]) -> Option<Mechanism> {
        match name {
            b"PLAIN" => Some(Mechanism::Plain),
            b"LOGIN" => Some(Mechanism::Login),
            _ => None,
        }
    }
}

/// The base64 prompts of AUTH LOGIN: "Username:" and "Password:".
pub const LOGIN_USERNAME: &str = "VXNlcm5hbWU6";
pub const LOGIN_PASSWORD: &str = "UGFzc3dvcmQ6";

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    #[error("invalid base64")]
    Base64,
    #[error("malformed PLAIN message")]
    Plain,
    #[error("empty user name")]
    EmptyUser,
}

/// A client's answer to a SASL challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Data(Vec<u8>),
    /// `*`: the client gives up (IMAP/POP3/SMTP all use it).
    Cancel,
}

/// Decodes one response line: `*` cancels, `=` is an empty response.
pub fn response(line: &[u8]) -> Result<Response, SaslError> {
    match line {
        b"*" => Ok(Response::Cancel),
        b"=" => Ok(Response::Data(Vec::new())),
        _ => STANDARD
            .decode(line)
            .map(Response::Data)
            .map_err(|_| SaslError::Base64),
    }
}

/// A user name and password, as a login presented them.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The identity to act as, if different (PLAIN's authzid).
    pub authzid: Vec<u8>,
    pub user: Vec<u8>,
    pub pass: Vec<u8>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("authzid", &String::from_utf8_lossy(&self.authzid))
            .field("user", &String::from_utf8_lossy(&self.user))
            .field("pass", &"<hidden>")
            .finish()
    }
}

/// Splits a decoded PLAIN message: `authzid NUL authcid NUL passwd`.
pub fn plain(message: &[u8]) -> Result<Credentials, SaslError> {
    let mut parts = message.split(|&b| b == 0);
    let (Some(authzid), Some(user), Some(pass), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Plain);
    };
    if user.is_empty() {
        return Err(SaslError::EmptyUser);
    }
    Ok(Credentials {
        authzid: authzid.to_vec(),
        user: user.to_vec(),
        pass: pass.to_vec(),
    })
}

/// A PLAIN initial response for logging in to a backend.
pub fn encode_plain(authzid: &[u8], user: &[u8], pass: &[u8]) -> String {
    let mut message = Vec::with_capacity(authzid.len() + user.len() + pass.len() + 2);
    message.extend_from_slice(authzid);
    message.push(0);
    message.extend_from_slice(user);
    message.push(0);
    message.extend_from_slice(pass);
    STANDARD.encode(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_round_trip() {
        let encoded = encode_plain(b"", b"alice", b"s3cret");
        let Ok(Response::Data(decoded)) = response(encoded.as_bytes()) else {
            panic!("decodes")
        };
        let c = plain(&decoded).expect("valid");
        assert_eq!(
            (c.user.as_slice(), c.pass.as_slice()),
            (&b"alice"[..], &b"s3cret"[..])
        );
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn refusals_and_cancel() {
        assert_eq!(response(b"*"), Ok(Response::Cancel));
        assert_eq!(response(b"=="), Err(SaslError::Base64));
        assert_eq!(plain(b"a\0b"), Err(SaslError::Plain));
        assert_eq!(plain(b"a\0b\0c\0d"), Err(SaslError::Plain));
        assert_eq!(plain(b"\0\0pw"), Err(SaslError::EmptyUser));
        assert_eq!(Mechanism::from_name(b"CRAM-MD5"), None);
    }
}
