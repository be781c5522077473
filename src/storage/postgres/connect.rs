//! Reaching the database: the URL, TLS, the pool, and the statement
//! timeout every connection is opened with.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::config::{Host, SslMode};

use crate::storage::StoreError;

/// How to reach the database and how long to wait for it.
#[derive(Clone)]
pub struct PgOptions {
    /// `postgres://user:password@host:port/database?sslmode=…` (or the
    /// `key=value` form).
    pub url: String,
    /// PEM roots trusted for the server's certificate beside the web's
    /// (a private CA).
    pub ca_pem: Option<Vec<u8>>,
    /// Connections kept open at most.
    pub pool_size: usize,
    /// The server cancels any statement running longer (set on every
    /// connection); a call gives up [`MARGIN`] after it.
    pub statement_timeout: Duration,
}

impl fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgOptions")
            .field("url", &masked_url(&self.url))
            .field("ca_pem", &self.ca_pem.as_ref().map(Vec::len))
            .field("pool_size", &self.pool_size)
            .field("statement_timeout", &self.statement_timeout)
            .finish()
    }
}

/// What a call waits beyond the statement timeout: for a free connection,
/// or to connect.
pub const MARGIN: Duration = Duration::from_secs(2);

/// The URL with its password (in the user part or a `password=` parameter)
/// replaced by `***`; a value that is not a `postgres://` URL is hidden
/// whole, since a `key=value` string may hold a password anywhere.
pub fn masked_url(raw: &str) -> String {
    if raw.is_empty() {
        return String::new();
    }
    let Ok(mut url) = url::Url::parse(raw) else {
        return "***".into();
    };
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return "***".into();
    }
    if url.password().is_some() && url.set_password(Some("***")).is_err() {
        return "***".into();
    }
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k.eq_ignore_ascii_case("password") {
                "***".into()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    if !pairs.is_empty() {
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

/// The client configuration `raw` describes, or why it is not one.
/// `sslmode=verify-full` and `verify-ca` are taken as `require`: the
/// server's certificate is always verified (chain and host name).
pub fn parse_url(raw: &str) -> Result<tokio_postgres::Config, String> {
    let raw = raw
        .replace("sslmode=verify-full", "sslmode=require")
        .replace("sslmode=verify-ca", "sslmode=require");
    raw.parse::<tokio_postgres::Config>()
        .map_err(|e| format!("not a PostgreSQL connection URL: {e}"))
}

/// Whether connections go through TLS: not with `sslmode=disable`, nor
/// over a Unix socket. (Without `sslmode`, TLS is used when the server
/// offers it, and its certificate is verified.)
fn uses_tls(config: &tokio_postgres::Config) -> bool {
    config.get_ssl_mode() != SslMode::Disable
        && config.get_hosts().iter().any(|h| matches!(h, Host::Tcp(_)))
}

/// rustls with ring and the Mozilla roots (those reqwest trusts here),
/// plus `ca_pem`'s certificates.
fn rustls_connector(
    ca_pem: Option<&[u8]>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(pem) = ca_pem {
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| engine(format!("storage.database_ca_file: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| engine(format!("storage.database_ca_file: {e}")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| engine(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// The pool; it connects lazily, on the first call. Each connection runs
/// with the server-side `statement_timeout`.
pub fn pool(options: &PgOptions) -> Result<Pool, StoreError> {
    let mut config =
        parse_url(&options.url).map_err(|e| engine(format!("storage.database_url: {e}")))?;
    let ms = options.statement_timeout.as_millis().max(1);
    // The server's notices ("already exists, skipping") are not news.
    let ours = format!("-c statement_timeout={ms} -c client_min_messages=warning");
    let startup = match config.get_options() {
        Some(given) => format!("{given} {ours}"),
        None => ours,
    };
    config.options(&startup);
    let wait = options.statement_timeout + MARGIN;
    config.connect_timeout(wait);
    if config.get_application_name().is_none() {
        config.application_name("drawbridge");
    }
    let manager_config = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = if uses_tls(&config) {
        let tls = rustls_connector(options.ca_pem.as_deref())?;
        Manager::from_config(config, tls, manager_config)
    } else {
        Manager::from_config(config, tokio_postgres::NoTls, manager_config)
    };
    Pool::builder(manager)
        .max_size(options.pool_size.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(wait))
        .create_timeout(Some(wait))
        .recycle_timeout(Some(wait))
        .build()
        .map_err(|e| engine(format!("PostgreSQL pool: {e}")))
}

fn engine(message: String) -> StoreError {
    StoreError::Engine(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_never_shows_in_the_masked_url() {
        assert_eq!(
            masked_url("postgres://app:s3cret@db.internal:5432/drawbridge?sslmode=require"),
            "postgres://app:***@db.internal:5432/drawbridge?sslmode=require"
        );
        let masked = masked_url("postgresql://app@db/x?password=s3cret&sslmode=disable");
        assert!(!masked.contains("s3cret"), "{masked}");
        assert!(masked.contains("sslmode=disable"), "{masked}");
        assert_eq!(masked_url("host=db user=app password=s3cret"), "***");
        assert_eq!(masked_url("postgres://db/x"), "postgres://db/x");
    }

    #[test]
    fn verify_full_is_taken_and_tls_is_off_only_when_asked_or_over_a_socket() {
        let verify = parse_url("postgres://u@db/x?sslmode=verify-full").unwrap();
        assert_eq!(verify.get_ssl_mode(), SslMode::Require);
        assert!(uses_tls(&verify));
        assert!(!uses_tls(
            &parse_url("postgres://u@db/x?sslmode=disable").unwrap()
        ));
        assert!(!uses_tls(
            &parse_url("host=/run/postgresql user=u dbname=x").unwrap()
        ));
        assert!(uses_tls(&parse_url("postgres://u@db/x").unwrap()));
        assert!(parse_url("mysql://u@db/x").is_err());
    }
}
