//! Built-in HTTPS: the certificate files, loaded with clear errors and
//! reloaded in service.
//!
//! - [`certs`]: loading a chain and key, the leaf's validity.
//! - [`reload`]: the pair in service, swapped on reload; the rustls server
//!   settings.

pub mod certs;
pub mod reload;

pub use certs::{load, CertError, LoadedCert};
pub use reload::{reload_on_hangup, server_config, watch, ReloadableCert};

/// A file of the test certificates (`tests/fixtures/tls/`).
#[cfg(test)]
fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}
