//! The certificate endpoints (docs/api.md, docs/tls.md):
//!
//! ```text
//! GET  /certs               every certificate levee serves: obtained (ACME) and files
//! POST /certs/NAME/renew    renews NAME now and answers with the outcome
//!                           (waits for it, at most RENEW_WAIT)
//! ```

use std::time::Duration;

use levee_acme::status::{self, Attempt, CertStatus};
use serde_json::{Value, json};

use crate::server::Reply;

/// Below `levee ctl`'s read timeout, so it hears the answer.
const RENEW_WAIT: Duration = Duration::from_secs(80);

pub(crate) fn list() -> Reply {
    let certs: Vec<Value> = status::all().iter().map(cert_json).collect();
    Reply::json(200, &json!({ "certs": certs }))
}

fn attempt_json(a: &Attempt) -> Value {
    json!({ "at": status::unix(a.at), "ok": a.ok, "message": a.message })
}

fn cert_json(c: &CertStatus) -> Value {
    json!({
        "name": c.name,
        "source": c.source,
        "names": c.info.as_ref().map(|i| i.names.clone()),
        "issuer": c.info.as_ref().map(|i| i.issuer.clone()),
        "serial": c.info.as_ref().map(|i| i.serial.clone()),
        "not_before": c.info.as_ref().map(|i| status::unix(i.not_before)),
        "not_after": c.info.as_ref().map(|i| status::unix(i.not_after)),
        "next_renewal": c.next.map(status::unix),
        "failures": c.failures,
        "last": c.last.as_ref().map(attempt_json),
    })
}

pub(crate) async fn renew(name: &str) -> Reply {
    let Some(manager) = levee_acme::current() else {
        return Reply::error(404, "levee runs without an [acme] section");
    };
    match manager.renew(name, RENEW_WAIT).await {
        Ok(a) => Reply::json(
            if a.ok { 200 } else { 502 },
            &json!({ "name": name, "renewal": attempt_json(&a) }),
        ),
        Err(message) => Reply::error(404, message),
    }
}
