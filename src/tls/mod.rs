//! Built-in HTTPS: the certificate files, loaded with clear errors and
//! reloaded in service.
//!
//! - [`certs`]: loading a chain and key, the leaf's validity.
//! - [`reload`]: the pair in service, swapped on reload; the rustls server
//!   settings.
//! - [`acme`]: ordering a certificate from an ACME CA.
//! - [`serving`]: which certificate each listener serves.

pub mod acme;
pub mod certs;
pub mod reload;
pub mod serving;

pub use certs::{load, parse, placeholder, CertError, LoadedCert};
pub use reload::{reload_on_hangup, server_config, watch, ReloadableCert};
pub use serving::Certificates;

/// A file of the test certificates (`tests/fixtures/tls/`).
#[cfg(test)]
fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}
