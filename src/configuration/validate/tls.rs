//! `[tls.acme]` and `server.http_redirect_port`: certificates Drawbridge
//! obtains itself, and the plain-HTTP port that answers their challenges
//! and redirects everything else to HTTPS.

use std::time::Duration;

use super::rules::{absolute_url, err, is_loopback_host, pem_roots, ranged};
use crate::configuration::{AcmeConfig, ConfigError, Settings};

/// `server.http_redirect_port` (`None`: 0, no redirect listener).
pub(super) fn redirect_port(s: &Settings) -> Result<Option<u16>, ConfigError> {
    const KEY: &str = "server.http_redirect_port";
    let port = ranged(KEY, s.server.http_redirect_port, 0, 65535)? as u16;
    if port == 0 {
        return Ok(None);
    }
    if !s.server.enable_https {
        return Err(err(
            KEY,
            "only with server.enable_https (it redirects to HTTPS)",
        ));
    }
    if i64::from(port) == s.server.port {
        return Err(err(KEY, "must differ from server.port"));
    }
    Ok(Some(port))
}

/// `[tls.acme]`, or `None` when it names no domain.
pub(super) fn acme(
    s: &Settings,
    redirect_port: Option<u16>,
) -> Result<Option<AcmeConfig>, ConfigError> {
    let a = &s.tls.acme;
    if a.domains.is_empty() {
        return Ok(None);
    }
    if !s.server.enable_https {
        return Err(err("tls.acme.domains", "needs server.enable_https"));
    }
    if redirect_port.is_none() {
        return Err(err(
            "tls.acme.domains",
            "needs server.http_redirect_port (80 in production): the HTTP-01 challenge is answered there",
        ));
    }
    for domain in &a.domains {
        if !is_dns_name(domain) {
            return Err(err(
                "tls.acme.domains",
                format!("`{domain}` is not a DNS name (no wildcard, no address: HTTP-01 validates each name)"),
            ));
        }
    }
    let directory_url = absolute_url("tls.acme.directory_url", &a.directory_url)?;
    let loopback = directory_url.host_str().is_some_and(is_loopback_host);
    if directory_url.scheme() != "https" && !loopback {
        return Err(err("tls.acme.directory_url", "must be https"));
    }
    for contact in &a.contact {
        if !contact.starts_with("mailto:") || contact.len() < 10 {
            return Err(err(
                "tls.acme.contact",
                format!("expected mailto: addresses, got `{contact}`"),
            ));
        }
    }
    let ca_pem = pem_roots("tls.acme.ca_file", &a.ca_file)?;
    let retry = ranged("tls.acme.retry_seconds", a.retry_seconds, 1, 86_400)?;
    Ok(Some(AcmeConfig {
        domains: a.domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
        directory_url,
        contact: a.contact.clone(),
        ca_pem,
        retry: Duration::from_secs(retry),
    }))
}

/// A host name a certificate can be issued for over HTTP-01.
fn is_dns_name(name: &str) -> bool {
    name.len() <= 253
        && name.parse::<std::net::IpAddr>().is_err()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// `admin.enable_https`: the admin listener needs a certificate, its own
/// or the server's.
pub(super) fn admin(s: &Settings, server_https: bool) -> Result<(), ConfigError> {
    let a = &s.admin;
    if !a.enable_https {
        return Ok(());
    }
    if a.listen.trim().is_empty() {
        return Err(err(
            "admin.enable_https",
            "needs admin.listen (its own listener)",
        ));
    }
    let own = [&a.ssl_cert_file, &a.ssl_key_file].map(|f| !f.trim().is_empty());
    match own {
        [true, true] => Ok(()),
        [false, false] if server_https => Ok(()),
        [false, false] => Err(err(
            "admin.ssl_cert_file",
            "required with admin.enable_https when the server itself does not serve HTTPS",
        )),
        _ => Err(err(
            "admin.ssl_cert_file",
            "admin.ssl_cert_file and admin.ssl_key_file go together",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::is_dns_name;

    #[test]
    fn only_plain_dns_names_are_acme_domains() {
        for ok in [
            "example.com",
            "mcp.example.co.uk",
            "drawbridge.test",
            "a-b.example",
        ] {
            assert!(is_dns_name(ok), "{ok}");
        }
        for bad in [
            "*.example.com",
            "127.0.0.1",
            "::1",
            "-a.example",
            "a..b",
            "",
            "a_b.example",
        ] {
            assert!(!is_dns_name(bad), "{bad}");
        }
    }
}
