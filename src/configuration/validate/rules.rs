//! The checks every section uses: a ranged integer, an absolute URL, a
//! loopback host.

use url::Url;

use crate::configuration::ConfigError;

/// A [`ConfigError`] for `key`.
pub(super) fn err(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::new(key, problem)
}

/// An integer setting within `lo..=hi`.
pub(super) fn ranged(key: &str, value: i64, lo: i64, hi: i64) -> Result<u64, ConfigError> {
    if (lo..=hi).contains(&value) {
        Ok(value as u64)
    } else {
        Err(err(
            key,
            format!("must be between {lo} and {hi}, got {value}"),
        ))
    }
}

/// An absolute `http(s)` URL with a host.
pub(super) fn absolute_url(key: &str, raw: &str) -> Result<Url, ConfigError> {
    let url =
        Url::parse(raw).map_err(|e| err(key, format!("`{raw}` is not an absolute URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(err(
            key,
            format!("`{raw}` must be an http(s) URL with a host"),
        ));
    }
    Ok(url)
}

/// `localhost` or a loopback IP address (IPv6 in brackets or not).
pub(super) fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The PEM certificates of the file `path` names (`None` when empty), for
/// trusting a private or test CA; a file without one is an error.
pub(super) fn pem_roots(key: &str, path: &str) -> Result<Option<Vec<u8>>, ConfigError> {
    let path = path.trim();
    if path.is_empty() {
        return Ok(None);
    }
    let pem = std::fs::read(path).map_err(|e| err(key, format!("cannot read {path}: {e}")))?;
    match reqwest::Certificate::from_pem_bundle(&pem) {
        Ok(certs) if !certs.is_empty() => Ok(Some(pem)),
        _ => Err(err(
            key,
            format!("{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
        )),
    }
}
