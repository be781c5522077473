//! Automatic certificates: the ACME certificate and account are kept sealed
//! in the Vault (kind `acme`), put in service at start, and renewed once a
//! third of the certificate's life is left; a failed order is retried with
//! a doubling wait (up to an hour) while the certificate in service stays.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::actors::vault::{OpenSecret, SealSecret};
use crate::audit::AuditEvent;
use crate::configuration::AcmeConfig;
use crate::metrics::METRICS;
use crate::service::Services;
use crate::tls::acme::{order, renewal_due_at, Http01Challenges};
use crate::tls::{parse, LoadedCert, ReloadableCert};

const KIND: &str = "acme";
const ACCOUNT: &str = "account";
const CERTIFICATE: &str = "certificate";
/// The longest wait between renewal checks, and after failures.
const LONGEST_WAIT: Duration = Duration::from_secs(3600);

/// A certificate as kept in the Vault.
#[derive(Serialize, Deserialize)]
struct Stored {
    chain_pem: String,
    key_pem: String,
}

/// What renews the public certificate.
pub struct Renewal {
    pub services: Services,
    pub config: AcmeConfig,
    pub cert: Arc<ReloadableCert>,
    pub challenges: Arc<Http01Challenges>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Renewal {
    /// Puts the stored certificate in service (if there is one for these
    /// domains and it has not expired), then keeps it renewed in the
    /// background.
    pub async fn start(self) {
        if let Some(stored) = self.stored().await {
            if !stored.expired_at(now()) {
                tracing::info!(
                    days_left = stored.days_left(now()),
                    "ACME certificate from the data directory in service"
                );
                self.cert.install(stored);
            }
        }
        actix_web::rt::spawn(self.run());
    }

    async fn stored(&self) -> Option<LoadedCert> {
        let bytes = self.open(CERTIFICATE).await?;
        let stored: Stored = serde_json::from_slice(&bytes).ok()?;
        let loaded = self.parse(&stored).ok()?;
        // A certificate for other names (the domains changed) is not used.
        let names = crate::tls::certs::names(&loaded);
        self.config
            .domains
            .iter()
            .all(|d| names.contains(d))
            .then_some(loaded)
    }

    async fn open(&self, id: &str) -> Option<Vec<u8>> {
        let msg = OpenSecret {
            kind: KIND.into(),
            id: id.into(),
        };
        match self.services.vault.read(msg).await {
            Ok(Ok(found)) => found,
            _ => None,
        }
    }

    async fn seal(&self, id: &str, plaintext: Vec<u8>) {
        let msg = SealSecret {
            kind: KIND.into(),
            id: id.into(),
            plaintext,
        };
        if !matches!(self.services.vault.send(msg).await, Ok(Ok(()))) {
            tracing::error!(
                id,
                "the ACME {id} could not be stored; it is in service until a restart"
            );
        }
    }

    fn parse(&self, stored: &Stored) -> Result<LoadedCert, crate::tls::CertError> {
        let label = std::path::Path::new("(ACME certificate)");
        parse(
            stored.chain_pem.as_bytes(),
            stored.key_pem.as_bytes(),
            label,
            label,
        )
    }

    /// Renews when due, forever.
    async fn run(self) {
        let mut backoff = self.config.retry;
        loop {
            let due = if self.cert.is_placeholder() {
                0
            } else {
                let loaded = self.cert.loaded();
                renewal_due_at(loaded.not_before, loaded.not_after)
            };
            let wait = due - now();
            if wait > 0 {
                let wait = Duration::from_secs(wait as u64).min(LONGEST_WAIT);
                actix_web::rt::time::sleep(wait).await;
                continue;
            }
            match self.renew().await {
                Ok(()) => backoff = self.config.retry,
                Err(reason) => {
                    METRICS
                        .certificates_issued
                        .with_label_values(&["failed"])
                        .inc();
                    AuditEvent::CertificateOrderFailed {
                        domains: &self.config.domains.join(","),
                        reason: &reason,
                        retry_in_seconds: backoff.as_secs(),
                    }
                    .emit();
                    actix_web::rt::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(LONGEST_WAIT);
                }
            }
        }
    }

    /// One order: issued, checked, sealed, put in service.
    async fn renew(&self) -> Result<(), String> {
        let account = self.open(ACCOUNT).await;
        let issued = order(&self.config, account.as_deref(), &self.challenges)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(account) = issued.new_account {
            self.seal(ACCOUNT, account).await;
        }
        let stored = Stored {
            chain_pem: issued.chain_pem,
            key_pem: issued.key_pem,
        };
        let loaded = self.parse(&stored).map_err(|e| e.to_string())?;
        let bytes = serde_json::to_vec(&stored).map_err(|e| e.to_string())?;
        self.seal(CERTIFICATE, bytes).await;
        let renewal = !self.cert.is_placeholder();
        let not_after = loaded.not_after;
        self.cert.install(loaded);
        METRICS
            .certificates_issued
            .with_label_values(&["issued"])
            .inc();
        AuditEvent::CertificateIssued {
            domains: &self.config.domains.join(","),
            renewal,
            not_after,
        }
        .emit();
        Ok(())
    }
}
