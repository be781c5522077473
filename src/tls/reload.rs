//! The certificate in service, swapped without a restart and without
//! dropping connections: handshakes ask [`ReloadableCert`] for the current
//! pair; a reload that fails leaves the old pair in service. The pair comes
//! from files (reloaded when they change or on SIGHUP) or is installed by
//! the ACME renewal.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::certs::{load, CertError, LoadedCert};
use crate::metrics::METRICS;

#[derive(Debug)]
pub struct ReloadableCert {
    /// The certificate and key files; `None` when the pair is installed
    /// (ACME).
    files: Option<(PathBuf, PathBuf)>,
    /// The listener it serves (`public`, `admin`), for the expiry metric.
    listener: &'static str,
    current: RwLock<Current>,
}

#[derive(Debug, Clone)]
struct Current {
    loaded: LoadedCert,
    /// The files' modification times when they were loaded.
    stamps: (Option<SystemTime>, Option<SystemTime>),
    /// A stand-in until a real certificate is installed.
    placeholder: bool,
}

fn stamp(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl ReloadableCert {
    /// Loads the pair; an error here stops start-up.
    pub fn open(cert_path: PathBuf, key_path: PathBuf) -> Result<Self, CertError> {
        let stamps = (stamp(&cert_path), stamp(&key_path));
        let loaded = load(&cert_path, &key_path)?;
        let served = Self {
            files: Some((cert_path, key_path)),
            listener: "public",
            current: RwLock::new(Current {
                loaded,
                stamps,
                placeholder: false,
            }),
        };
        served.observe();
        Ok(served)
    }

    /// Serves `loaded`, installed rather than read from files; a
    /// `placeholder` stands in until [`ReloadableCert::install`].
    pub fn installed(loaded: LoadedCert, placeholder: bool) -> Self {
        let served = Self {
            files: None,
            listener: "public",
            current: RwLock::new(Current {
                loaded,
                stamps: (None, None),
                placeholder,
            }),
        };
        if !placeholder {
            served.observe();
        }
        served
    }

    /// Names the listener this certificate serves (the expiry metric's label).
    pub fn for_listener(mut self, listener: &'static str) -> Self {
        self.listener = listener;
        self.observe();
        self
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Current> {
        self.current.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The pair in service.
    pub fn loaded(&self) -> LoadedCert {
        self.read().loaded.clone()
    }

    /// Whether a stand-in is served (no real certificate yet).
    pub fn is_placeholder(&self) -> bool {
        self.read().placeholder
    }

    /// Puts `loaded` in service (a certificate ACME issued).
    pub fn install(&self, loaded: LoadedCert) {
        {
            let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
            current.loaded = loaded;
            current.placeholder = false;
        }
        self.observe();
    }

    /// Whether either file changed since the pair in service was loaded.
    pub fn files_changed(&self) -> bool {
        let Some((cert, key)) = &self.files else {
            return false;
        };
        self.read().stamps != (stamp(cert), stamp(key))
    }

    /// Loads the files again and puts the new pair in service; on error the
    /// old pair stays and the error is returned (for the log line). An
    /// installed pair has no files: it stays as it is.
    pub fn reload(&self) -> Result<LoadedCert, CertError> {
        let Some((cert_path, key_path)) = &self.files else {
            return Ok(self.loaded());
        };
        let stamps = (stamp(cert_path), stamp(key_path));
        let result = load(cert_path, key_path);
        let loaded = {
            let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
            // Remember the failed files' times too, so a watcher does not
            // retry the same bad pair every tick.
            current.stamps = stamps;
            let loaded = result?;
            current.loaded = loaded.clone();
            loaded
        };
        self.observe();
        Ok(loaded)
    }

    /// Publishes the served certificate's expiry.
    fn observe(&self) {
        let not_after = self.read().loaded.not_after;
        METRICS
            .certificate_expiry
            .with_label_values(&[self.listener])
            .set(not_after);
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.read().loaded.certified.clone())
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
pub fn reload_on_hangup(certs: Vec<Arc<ReloadableCert>>) {
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
            for cert in &certs {
                reload_and_log(cert, "SIGHUP");
            }
        }
    });
}

/// Reloads the pair and says in the log what came of it (and why).
fn reload_and_log(cert: &ReloadableCert, trigger: &str) {
    if cert.files.is_none() {
        return;
    }
    let listener = cert.listener;
    match cert.reload() {
        Ok(_) => tracing::info!(trigger, listener, "HTTPS certificate reloaded"),
        Err(e) => {
            tracing::error!(trigger, listener, error = %e, "the new HTTPS certificate was refused; the old one stays in service")
        }
    }
}

/// How often the certificate files are looked at for a change.
pub const WATCH_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Puts a changed certificate or key file into service without a restart
/// (checked every [`WATCH_EVERY`] on a thread of its own); a bad new pair
/// is logged and the old one stays.
pub fn watch(cert: Arc<ReloadableCert>) {
    if cert.files.is_none() {
        return;
    }
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

    #[test]
    fn an_installed_certificate_replaces_the_placeholder_and_publishes_its_expiry() {
        let placeholder = crate::tls::certs::placeholder(&["drawbridge.test".into()]).unwrap();
        let served = ReloadableCert::installed(placeholder, true).for_listener("unit-test");
        assert!(served.is_placeholder());
        assert!(!served.files_changed());
        let real = load(&fixture("localhost.pem"), &fixture("localhost.key")).unwrap();
        served.install(real.clone());
        assert!(!served.is_placeholder());
        assert!(Arc::ptr_eq(&served.loaded().certified, &real.certified));
        let gauge = METRICS
            .certificate_expiry
            .with_label_values(&["unit-test"])
            .get();
        assert_eq!(gauge, real.not_after);
    }
}
