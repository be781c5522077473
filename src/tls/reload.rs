//! The certificate in service, swapped without a restart and without
//! dropping connections: handshakes ask [`ReloadableCert`] for the current
//! pair; a reload that fails leaves the old pair in service.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::certs::{load, CertError, LoadedCert};

#[derive(Debug)]
pub struct ReloadableCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Current>,
}

#[derive(Debug, Clone)]
struct Current {
    loaded: LoadedCert,
    /// The files' modification times when they were loaded.
    stamps: (Option<SystemTime>, Option<SystemTime>),
}

fn stamp(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl ReloadableCert {
    /// Loads the pair; an error here stops start-up.
    pub fn open(cert_path: PathBuf, key_path: PathBuf) -> Result<Self, CertError> {
        let stamps = (stamp(&cert_path), stamp(&key_path));
        let loaded = load(&cert_path, &key_path)?;
        Ok(Self {
            cert_path,
            key_path,
            current: RwLock::new(Current { loaded, stamps }),
        })
    }

    /// The pair in service.
    pub fn loaded(&self) -> LoadedCert {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .loaded
            .clone()
    }

    /// Whether either file changed since the pair in service was loaded.
    pub fn files_changed(&self) -> bool {
        let now = (stamp(&self.cert_path), stamp(&self.key_path));
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .stamps
            != now
    }

    /// Loads the files again and puts the new pair in service; on error the
    /// old pair stays and the error is returned (for the log line).
    pub fn reload(&self) -> Result<LoadedCert, CertError> {
        let stamps = (stamp(&self.cert_path), stamp(&self.key_path));
        let result = load(&self.cert_path, &self.key_path);
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        // Remember the failed files' times too, so a watcher does not retry
        // the same bad pair every tick.
        current.stamps = stamps;
        let loaded = result?;
        current.loaded = loaded.clone();
        Ok(loaded)
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .loaded
                .certified
                .clone(),
        )
    }
}

/// The server's TLS settings: rustls' safe defaults (TLS 1.2 and 1.3) and
/// the reloadable certificate. (actix-web adds the ALPN protocols it
/// serves, `h2` and `http/1.1`.)
pub fn server_config(cert: Arc<ReloadableCert>) -> rustls::ServerConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the safe default protocol versions")
        .with_no_client_auth()
        .with_cert_resolver(cert)
}

/// Puts the files in service again on SIGHUP (an operator's explicit
/// "the certificate was renewed"); must run inside the actix system.
pub fn reload_on_hangup(cert: Arc<ReloadableCert>) {
    use actix_web::rt::signal::unix::{signal, SignalKind};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "SIGHUP will not reload the certificate");
            return;
        }
    };
    actix_web::rt::spawn(async move {
        while hangups.recv().await.is_some() {
            reload_and_log(&cert, "SIGHUP");
        }
    });
}

/// Reloads the pair and says in the log what came of it (and why).
fn reload_and_log(cert: &ReloadableCert, trigger: &str) {
    match cert.reload() {
        Ok(_) => tracing::info!(trigger, "HTTPS certificate reloaded"),
        Err(e) => {
            tracing::error!(trigger, error = %e, "the new HTTPS certificate was refused; the old one stays in service")
        }
    }
}

/// How often the certificate files are looked at for a change.
pub const WATCH_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Puts a changed certificate or key file into service without a restart
/// (checked every [`WATCH_EVERY`] on a thread of its own); a bad new pair
/// is logged and the old one stays.
pub fn watch(cert: Arc<ReloadableCert>) {
    let spawned = std::thread::Builder::new()
        .name("drawbridge-tls-watch".into())
        .spawn(move || loop {
            std::thread::sleep(WATCH_EVERY);
            if cert.files_changed() {
                reload_and_log(&cert, "file change");
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "certificate changes will need a restart");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::fixture;

    #[test]
    fn a_bad_new_pair_is_refused_and_the_old_one_stays_in_service() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::copy(fixture("localhost.pem"), &cert).unwrap();
        std::fs::copy(fixture("localhost.key"), &key).unwrap();
        let served = ReloadableCert::open(cert.clone(), key.clone()).unwrap();
        let before = served.loaded().certified;
        assert!(!served.files_changed());

        std::fs::copy(fixture("other.key"), &key).unwrap();
        assert!(served.reload().is_err());
        assert!(
            Arc::ptr_eq(&served.loaded().certified, &before),
            "a bad pair went into service"
        );
        assert!(
            !served.files_changed(),
            "the same bad pair would be retried every tick"
        );

        std::fs::copy(fixture("localhost.key"), &key).unwrap();
        let after = served.reload().unwrap();
        assert!(!Arc::ptr_eq(&after.certified, &before));
        assert!(Arc::ptr_eq(&served.loaded().certified, &after.certified));
    }
}
