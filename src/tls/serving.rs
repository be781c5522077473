//! Which certificates the listeners serve: the public listener's from
//! files or from ACME (a stand-in until the first one is issued), and the
//! admin listener's own files or the public one's.

use std::sync::Arc;

use super::acme::Http01Challenges;
use super::reload::{reload_on_hangup, watch, ReloadableCert};
use super::CertError;
use crate::clock::UnixTime;
use crate::configuration::Config;

/// The certificates in service.
#[derive(Debug, Default, Clone)]
pub struct Certificates {
    /// The public listener's (with `ENABLE_HTTPS`).
    pub public: Option<Arc<ReloadableCert>>,
    /// The admin listener's (with `admin.enable_https`): its own, or the
    /// public one.
    pub admin: Option<Arc<ReloadableCert>>,
    /// With ACME: the HTTP-01 answers the redirect listener serves.
    pub challenges: Option<Arc<Http01Challenges>>,
}

impl Certificates {
    /// Loads what the configuration names; a file that cannot be served
    /// stops start-up. An expired certificate is a warning.
    pub fn open(config: &Config, now: UnixTime) -> Result<Self, CertError> {
        let mut certs = Self::default();
        if let Some((cert, key)) = &config.server.tls_files {
            certs.public = Some(Arc::new(opened(
                ReloadableCert::open(cert.clone(), key.clone())?,
                cert,
                now,
            )));
        } else if let Some(acme) = &config.server.acme {
            let stand_in = super::certs::placeholder(&acme.domains)?;
            certs.public = Some(Arc::new(ReloadableCert::installed(stand_in, true)));
            certs.challenges = Some(Arc::default());
        }
        let admin = &config.admin;
        if admin.enable_https {
            certs.admin = if admin.ssl_cert_file.trim().is_empty() {
                certs.public.clone()
            } else {
                let (cert, key) = (&admin.ssl_cert_file, &admin.ssl_key_file);
                let served = ReloadableCert::open(cert.into(), key.into())?.for_listener("admin");
                Some(Arc::new(opened(served, std::path::Path::new(cert), now)))
            };
        }
        Ok(certs)
    }

    /// Puts changed files in service (a watch, and SIGHUP); must run
    /// inside the actix system.
    pub fn keep_fresh(&self) {
        let mut all: Vec<Arc<ReloadableCert>> = self.public.iter().cloned().collect();
        if let Some(admin) = &self.admin {
            if !all.iter().any(|c| Arc::ptr_eq(c, admin)) {
                all.push(admin.clone());
            }
        }
        for cert in &all {
            watch(cert.clone());
        }
        if !all.is_empty() {
            reload_on_hangup(all);
        }
    }
}

/// Logs what was loaded from `file` (a warning when it is outside its
/// validity: the operator may be replacing it, which needs no restart).
fn opened(served: ReloadableCert, file: &std::path::Path, now: UnixTime) -> ReloadableCert {
    let loaded = served.loaded();
    if loaded.expired_at(now) {
        tracing::warn!(file = %file.display(), "the HTTPS certificate is outside its validity; clients will refuse it");
    } else {
        tracing::info!(file = %file.display(), days_left = loaded.days_left(now), "HTTPS certificate loaded");
    }
    served
}
