//! One order, from new-order to the issued chain (RFC 8555 §7.4): each
//! authorization answered by the first challenge type levee can serve,
//! the CSR sent, the certificate fetched. The challenge answers are
//! published for levee's listeners (levee_tls::challenge) only while the
//! order runs, and withdrawn however it ends.

use std::time::Duration;

use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewOrder, OrderStatus, RetryPolicy,
};
use levee_tls::challenge;

use crate::dns01::Dns01;
use crate::error::{AcmeError, problem};
use crate::keys;
use crate::settings::{Challenge, Settings};
use crate::store::Stored;

/// How long the CA gets to validate and to issue.
const VALIDATION: RetryPolicy = RetryPolicy::new()
    .initial_delay(Duration::from_millis(500))
    .backoff(1.5)
    .timeout(Duration::from_secs(90));

/// What an order published, withdrawn on drop.
#[derive(Default)]
struct Published {
    http01: Vec<String>,
    tls_alpn01: Vec<String>,
    dns01: Vec<(String, String)>,
}

impl Drop for Published {
    fn drop(&mut self) {
        for t in &self.http01 {
            challenge::remove_http01(t);
        }
        for n in &self.tls_alpn01 {
            challenge::remove_tls_alpn01(n);
        }
    }
}

/// Orders a certificate for `name` and returns it with its new key.
pub(crate) async fn issue(
    account: &Account,
    name: &str,
    settings: &Settings,
    dns: Option<&dyn Dns01>,
    replaces: Option<instant_acme::CertificateIdentifier<'static>>,
) -> Result<Stored, AcmeError> {
    let ids = [Identifier::Dns(name.to_owned())];
    let mut new = NewOrder::new(&ids);
    if let Some(r) = replaces {
        new = new.replaces(r);
    }
    let mut order = account.new_order(&new).await?;
    let mut published = Published::default();
    let result = answer(&mut order, name, settings, dns, &mut published).await;
    // DNS records are removed whatever happened; a failure to remove one
    // is only logged (the record is harmless and replaced next time).
    if let Some(dns) = dns {
        for (record, value) in published.dns01.drain(..) {
            if let Err(e) = dns.remove(&record, &value).await {
                tracing::warn!(name, error = %e, "DNS-01: the challenge record was not removed");
            }
        }
    }
    result?;
    drop(published);
    let key = keys::generate(settings.key_type)?;
    let csr = keys::csr(&key, &[name.to_owned()])?;
    order.finalize_csr(&csr).await?;
    let chain = order.poll_certificate(&VALIDATION).await?;
    // What the CA sent must be a chain for this key: checked here, before
    // it is stored or served.
    let key_pem = key.serialize_pem();
    levee_tls::certified_pem(chain.as_bytes(), key_pem.as_bytes(), None).map_err(|e| {
        AcmeError::BadAnswer {
            url: order.url().to_owned(),
            reason: format!("the issued certificate: {e}"),
        }
    })?;
    Ok(Stored {
        chain: chain.into_bytes(),
        key: key_pem.into_bytes(),
        ocsp: None,
    })
}

async fn answer(
    order: &mut instant_acme::Order,
    name: &str,
    settings: &Settings,
    dns: Option<&dyn Dns01>,
    published: &mut Published,
) -> Result<(), AcmeError> {
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz?;
        match authz.status {
            AuthorizationStatus::Valid => continue,
            AuthorizationStatus::Pending => {}
            other => {
                return Err(AcmeError::Validation {
                    name: name.to_owned(),
                    reason: format!("the authorization is {other:?}"),
                });
            }
        }
        let id = authz.identifier().to_string();
        let wildcard = authz.identifier().wildcard;
        let offered: Vec<ChallengeType> =
            authz.challenges.iter().map(|c| c.r#type.clone()).collect();
        let wanted = |c: Challenge| match c {
            Challenge::Http01 => ChallengeType::Http01,
            Challenge::TlsAlpn01 => ChallengeType::TlsAlpn01,
            Challenge::Dns01 => ChallengeType::Dns01,
        };
        // A wildcard can only be validated over DNS (RFC 8555 §7.1.3).
        let kind = if wildcard {
            (dns.is_some() && offered.contains(&ChallengeType::Dns01))
                .then_some(ChallengeType::Dns01)
        } else {
            settings
                .challenges
                .iter()
                .map(|c| wanted(*c))
                .filter(|t| *t != ChallengeType::Dns01 || dns.is_some())
                .find(|t| offered.contains(t))
        };
        let Some(kind) = kind else {
            return Err(AcmeError::NoChallenge {
                name: id,
                offered: offered
                    .iter()
                    .map(|t| format!("{t:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        let bare = id.trim_start_matches("*.").to_owned();
        let mut ch = authz
            .challenge(kind.clone())
            .ok_or_else(|| AcmeError::NoChallenge {
                name: id.clone(),
                offered: String::new(),
            })?;
        let ka = ch.key_authorization();
        match kind {
            ChallengeType::Http01 => {
                challenge::add_http01(&ch.token, ka.as_str());
                published.http01.push(ch.token.clone());
            }
            ChallengeType::TlsAlpn01 => {
                let cert = keys::tls_alpn01_cert(&bare, ka.digest().as_ref())?;
                challenge::add_tls_alpn01(&bare, cert);
                published.tls_alpn01.push(bare.clone());
            }
            _ => {
                let Some(dns) = dns else {
                    return Err(AcmeError::Dns("no [acme.dns] to write records to".into()));
                };
                let record = format!("_acme-challenge.{bare}");
                let value = ka.dns_value();
                dns.present(&record, &value).await?;
                published.dns01.push((record, value));
            }
        }
        ch.set_ready().await?;
    }
    match order.poll_ready(&VALIDATION).await {
        Ok(OrderStatus::Ready) => Ok(()),
        Ok(status) => Err(failed(order, name, format!("the order is {status:?}")).await),
        Err(e) => Err(AcmeError::from(e)),
    }
}

/// Why an order failed, from its authorizations' challenge errors.
async fn failed(order: &mut instant_acme::Order, name: &str, fallback: String) -> AcmeError {
    let mut reason = None;
    let mut authorizations = order.authorizations();
    while let Some(Ok(authz)) = authorizations.next().await {
        if let Some(p) = authz.challenges.iter().find_map(|c| c.error.as_ref()) {
            reason = Some(problem(p));
        }
    }
    let reason = reason
        .or_else(|| order.state().error.as_ref().map(problem))
        .unwrap_or(fallback);
    AcmeError::Validation {
        name: name.to_owned(),
        reason,
    }
}
