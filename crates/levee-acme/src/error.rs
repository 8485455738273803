//! What can go wrong obtaining a certificate. Each error says whose fault
//! it is (the CA, the network, levee's own files, or policy), so the log
//! line and `levee ctl certs` tell the operator where to look.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    /// The CA said no, with an RFC 7807 problem document.
    #[error("the CA refused: {0}")]
    Ca(String),
    /// The CA no longer knows the account (a test CA restarted, a staging
    /// reset): a new one is made at the next attempt.
    #[error("the CA refused: {0}")]
    NoAccount(String),
    /// The CA's answer was not what RFC 8555 says it sends.
    #[error("bad answer from the CA at {url}: {reason}")]
    BadAnswer { url: String, reason: String },
    /// The CA could not be reached, or did not answer in time.
    #[error("cannot reach the CA at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// A validation the CA ran failed (the names' DNS, a firewall).
    #[error("validation of {name} failed: {reason}")]
    Validation { name: String, reason: String },
    /// No challenge type the CA offers for `name` is one levee can answer.
    #[error("no usable challenge for {name} (offered: {offered})")]
    NoChallenge { name: String, offered: String },
    #[error("DNS-01: {0}")]
    Dns(String),
    #[error("`{}`: {source}", path.display())]
    Storage {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("stored state `{}` is unusable: {reason}", path.display())]
    Stored { path: PathBuf, reason: String },
    #[error("key or certificate: {0}")]
    Crypto(String),
    /// Policy: the name is not one levee may order.
    #[error("{name}: {reason}")]
    Refused { name: String, reason: String },
    /// The fleet's Redis could not be used; levee keeps what it has.
    #[error("fleet: {0}")]
    Fleet(String),
}

impl AcmeError {
    /// Whether a later attempt may succeed without anyone changing
    /// anything; policy refusals may not.
    pub fn retryable(&self) -> bool {
        !matches!(self, AcmeError::Refused { .. })
    }
}

/// Maps the ACME crate's errors: a problem document is the CA's word; the
/// rest is the transport's or a malformed answer's.
impl From<instant_acme::Error> for AcmeError {
    fn from(e: instant_acme::Error) -> AcmeError {
        use instant_acme::Error as E;
        match e {
            E::Api(p)
                if p.r#type
                    .as_deref()
                    .is_some_and(|t| t.ends_with(":accountDoesNotExist")) =>
            {
                AcmeError::NoAccount(problem(&p))
            }
            E::Api(p) => AcmeError::Ca(problem(&p)),
            E::Json(e) => AcmeError::BadAnswer {
                url: String::new(),
                reason: format!("not the JSON expected: {e}"),
            },
            E::Timeout(_) => AcmeError::Unreachable {
                url: String::new(),
                reason: "the order did not progress in time".into(),
            },
            // Our HTTP client's errors come back boxed inside `Other`.
            E::Other(inner) => match inner.downcast::<AcmeError>() {
                Ok(mine) => *mine,
                Err(other) => AcmeError::BadAnswer {
                    url: String::new(),
                    reason: other.to_string(),
                },
            },
            other => AcmeError::BadAnswer {
                url: String::new(),
                reason: other.to_string(),
            },
        }
    }
}

/// A problem document as one line: type, detail and subproblems.
pub(crate) fn problem(p: &instant_acme::Problem) -> String {
    let mut out = match (&p.r#type, &p.detail) {
        (Some(t), Some(d)) => format!(
            "{d} ({})",
            t.trim_start_matches("urn:ietf:params:acme:error:")
        ),
        (None, Some(d)) => d.clone(),
        (Some(t), None) => t.clone(),
        (None, None) => "no detail given".into(),
    };
    for s in &p.subproblems {
        if let Some(d) = &s.detail {
            out.push_str("; ");
            out.push_str(d);
        }
    }
    one_line(&out, 500)
}

/// Text from outside (the CA, an ask service) made fit for one log line:
/// no control characters, at most `max` bytes, cut at a character.
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    for c in text.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > max {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out
}
