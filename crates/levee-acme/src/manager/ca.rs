//! The manager's dealings with the CA beyond an order's own steps: the
//! order with its DNS-01 writer, the account (cached, shared, stored,
//! created on first use, forgotten when the CA no longer knows it), and
//! the CA's renewal information (ARI, RFC 9773).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use instant_acme::{Account, AccountCredentials, ExternalAccountKey, NewAccount};

use super::{ARI_EVERY, Manager, lock};
use crate::client::{CaClient, REQUEST_TIMEOUT};
use crate::dns01::{self, Dns01, Rfc2136};
use crate::error::AcmeError;
use crate::schedule;
use crate::settings::Settings;
use crate::store::{Store, Stored, directory_hash};

impl Manager {
    pub(super) async fn order(&self, name: &str, settings: &Settings) -> Result<Stored, AcmeError> {
        tracing::info!(name, directory = %settings.directory, "ordering a certificate");
        let account = self.account(settings).await?;
        let dns: Option<Arc<dyn Dns01>> = match &settings.dns {
            Some(d) => Some(Arc::new(Rfc2136::new(d.clone()))),
            None => dns01::local(),
        };
        let result = crate::issue::issue(&account, name, settings, dns.as_deref(), None).await;
        if let Err(AcmeError::NoAccount(_)) = &result {
            self.forget_account(settings).await;
        }
        result
    }

    /// Drops the account the CA no longer knows, everywhere it is kept,
    /// so the next attempt creates one.
    async fn forget_account(&self, settings: &Settings) {
        tracing::warn!(directory = %settings.directory, "the CA does not know levee's account; a new one is made at the next attempt");
        *self.account.lock().await = None;
        if let Err(e) =
            Store::open(&settings.storage).and_then(|s| s.remove_account(&settings.directory))
        {
            tracing::warn!(error = %e, "stored ACME account not removed");
        }
        if let Some(share) = self.share()
            && let Err(e) = share
                .forget_account(&directory_hash(&settings.directory))
                .await
        {
            tracing::warn!(error = %e, "fleet: shared ACME account not removed");
        }
    }

    /// The account at the configured CA: cached, else the fleet's, else
    /// the one on disk, else a new one (stored on disk mode 0600, and in
    /// the fleet).
    pub(super) async fn account(&self, settings: &Settings) -> Result<Account, AcmeError> {
        let mut cached = self.account.lock().await;
        if let Some((dir, account)) = &*cached
            && *dir == settings.directory
        {
            return Ok(account.clone());
        }
        let client = CaClient::new(settings.ca_root.as_deref(), REQUEST_TIMEOUT)?;
        let store = Store::open(&settings.storage)?;
        let hash = directory_hash(&settings.directory);
        let share = self.share();
        let mut json = None;
        if let Some(share) = &share {
            match share.account(&hash).await {
                Ok(j) => json = j,
                Err(e) => tracing::warn!(error = %e, "fleet: shared ACME account not read"),
            }
        }
        if json.is_none() {
            json = store.account(&settings.directory)?;
        }
        let account = match json {
            Some(json) => {
                let creds: AccountCredentials =
                    serde_json::from_slice(&json).map_err(|e| AcmeError::Stored {
                        path: store.dir().join("accounts"),
                        reason: e.to_string(),
                    })?;
                store.save_account(&settings.directory, &json)?;
                Account::builder_with_http(Box::new(client))
                    .from_credentials(creds)
                    .await?
            }
            None => {
                let contact: Vec<String> = settings
                    .contact
                    .iter()
                    .map(|c| format!("mailto:{c}"))
                    .collect();
                let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
                let eab = settings
                    .eab
                    .as_ref()
                    .map(|(kid, key)| ExternalAccountKey::new(kid.clone(), key));
                let (account, creds) = Account::builder_with_http(Box::new(client))
                    .create(
                        &NewAccount {
                            contact: &contact,
                            terms_of_service_agreed: true,
                            only_return_existing: false,
                        },
                        settings.directory.clone(),
                        eab.as_ref(),
                    )
                    .await?;
                let json =
                    serde_json::to_vec(&creds).map_err(|e| AcmeError::Crypto(e.to_string()))?;
                store.save_account(&settings.directory, &json)?;
                if let Some(share) = &share
                    && let Err(e) = share.put_account(&hash, &json).await
                {
                    tracing::warn!(error = %e, "fleet: ACME account not shared");
                }
                tracing::info!(directory = %settings.directory, "ACME account created");
                account
            }
        };
        *cached = Some((settings.directory.clone(), account.clone()));
        Ok(account)
    }

    /// Asks the CA's renewal information (RFC 9773) for `name`'s
    /// certificate; a window earlier than planned moves the renewal.
    pub(super) async fn refresh_ari(&self, name: &str) {
        let (der, info) = {
            let mut entries = lock(&self.entries);
            let Some(e) = entries.get_mut(name) else {
                return;
            };
            e.ari_at = None;
            let Some(h) = &e.held else { return };
            (h.certified.cert[0].clone(), h.info.clone())
        };
        let settings = self.settings.load_full();
        let Ok(account) = self.account(&settings).await else {
            self.set_ari(name, Some(SystemTime::now() + ARI_EVERY));
            return;
        };
        let Ok(id) = instant_acme::CertificateIdentifier::try_from(&der) else {
            return;
        };
        match account.renewal_info(&id).await {
            Ok((ari, retry)) => {
                let window = (
                    SystemTime::from(ari.suggested_window.start),
                    SystemTime::from(ari.suggested_window.end),
                    schedule::random_unit(),
                );
                let at = schedule::renew_at(&info, settings.renew_before, Some(window));
                let mut entries = lock(&self.entries);
                if let Some(e) = entries.get_mut(name) {
                    if at < e.due {
                        tracing::info!(
                            name,
                            "the CA's renewal information moves the renewal earlier"
                        );
                        e.due = at;
                    }
                    e.ari_at =
                        Some(SystemTime::now() + retry.clamp(Duration::from_secs(60), ARI_EVERY));
                }
            }
            // The CA has no ARI: never ask again.
            Err(instant_acme::Error::Unsupported(_)) => {}
            Err(e) => {
                tracing::debug!(name, error = %e, "renewal information not read");
                self.set_ari(name, Some(SystemTime::now() + ARI_EVERY));
            }
        }
    }
}
