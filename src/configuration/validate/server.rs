//! `[server]`: the listener, its limits and the public base URL.

use std::path::PathBuf;

use url::Url;

use super::rules::{absolute_url, err, ranged};
use crate::configuration::{AcmeConfig, ConfigError, Settings};

/// What the rest of the configuration needs from `[server]`.
pub(super) struct Server {
    pub base_url: Url,
    pub max_body_bytes: usize,
    /// The certificate chain and key files, with `enable_https`.
    pub tls_files: Option<(PathBuf, PathBuf)>,
    /// `Strict-Transport-Security` for HTTPS answers.
    pub hsts: Option<String>,
    pub acme: Option<AcmeConfig>,
    pub http_redirect_port: Option<u16>,
}

pub(super) fn validate(s: &Settings) -> Result<Server, ConfigError> {
    if s.server.host.trim().is_empty() {
        return Err(err("server.host", "must not be empty"));
    }
    let port = ranged("server.port", s.server.port, 0, 65535)?;
    ranged("server.workers", s.server.workers, 0, 256)?;
    ranged(
        "server.shutdown_timeout_seconds",
        s.server.shutdown_timeout_seconds,
        0,
        3600,
    )?;
    ranged(
        "server.head_read_timeout_seconds",
        s.server.head_read_timeout_seconds,
        1,
        3600,
    )?;
    ranged(
        "server.body_read_timeout_seconds",
        s.server.body_read_timeout_seconds,
        1,
        3600,
    )?;
    ranged(
        "server.max_connections_per_address",
        s.server.max_connections_per_address,
        0,
        1_000_000,
    )?;
    let max_body_bytes = ranged(
        "server.max_body_bytes",
        s.server.max_body_bytes,
        1024,
        16 << 20,
    )? as usize;
    // SSL_CERT_FILE is also the trust-store variable of OpenSSL tools and
    // is often set on a machine: it means nothing without enable_https.
    let http_redirect_port = super::tls::redirect_port(s)?;
    let acme = super::tls::acme(s, http_redirect_port)?;
    super::tls::admin(s, s.server.enable_https)?;
    // With ACME the certificate comes from the CA: the files (and an
    // SSL_CERT_FILE the machine sets for OpenSSL tools) are not used.
    let tls_files = if s.server.enable_https && acme.is_none() {
        for (key, file) in [
            ("server.ssl_cert_file", &s.server.ssl_cert_file),
            ("server.ssl_key_file", &s.server.ssl_key_file),
        ] {
            if file.trim().is_empty() {
                return Err(err(key, "required with server.enable_https (a PEM file)"));
            }
        }
        Some((
            PathBuf::from(&s.server.ssl_cert_file),
            PathBuf::from(&s.server.ssl_key_file),
        ))
    } else {
        None
    };
    let hsts_max_age = ranged(
        "server.hsts_max_age_seconds",
        s.server.hsts_max_age_seconds,
        0,
        2 * 31_536_000,
    )?;
    for origin in &s.server.cors_allowed_origins {
        if origin != "*" && !is_origin(origin) {
            return Err(err(
                "server.cors_allowed_origins",
                format!("expected `*` or origins such as https://app.example (scheme, host, port; no path), got `{origin}`"),
            ));
        }
    }
    Ok(Server {
        base_url: base_url(s, port)?,
        max_body_bytes,
        hsts: (s.server.enable_https && hsts_max_age > 0)
            .then(|| format!("max-age={hsts_max_age}")),
        tls_files,
        acme,
        http_redirect_port,
    })
}

/// `server.base_url`, or `http(s)://<host>:<port>` when it is empty.
fn base_url(s: &Settings, port: u64) -> Result<Url, ConfigError> {
    if s.server.base_url.is_empty() {
        let host = if s.server.host.contains(':') {
            format!("[{}]", s.server.host)
        } else {
            s.server.host.clone()
        };
        let scheme = if s.server.enable_https {
            "https"
        } else {
            "http"
        };
        return absolute_url("server.host", &format!("{scheme}://{host}:{port}"));
    }
    let url = absolute_url("server.base_url", &s.server.base_url)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(err("server.base_url", "must not have a query or fragment"));
    }
    Ok(url)
}

/// An origin as browsers send it: `scheme://host[:port]`, nothing after.
fn is_origin(raw: &str) -> bool {
    Url::parse(raw).is_ok_and(|u| {
        ["http", "https"].contains(&u.scheme())
            && u.host().is_some()
            && u.origin().ascii_serialization() == raw
    })
}
