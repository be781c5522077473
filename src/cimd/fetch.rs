//! Fetching a metadata document without opening an SSRF hole: the host is
//! resolved once and every address checked ([`super::address`]); the
//! connection goes to a checked address (reqwest is told the address, so it
//! does not look the name up again); no redirect is followed; only `200`
//! with a JSON content type counts; the body is read up to a size cap; the
//! connect and total times are short; no cookie or credential is sent.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::address::is_public;
use crate::domain::DocumentUrl;

/// The operator's bounds on a fetch.
#[derive(Debug, Clone)]
pub struct FetchPolicy {
    /// Largest document taken, in bytes.
    pub max_bytes: usize,
    pub connect_timeout: Duration,
    pub total_timeout: Duration,
    /// Allow special-use addresses (loopback, private…): tests only.
    pub allow_special_use_addresses: bool,
    /// Extra roots to trust (PEM), beside the built-in web roots: tests and
    /// private CAs.
    pub extra_roots_pem: Vec<Vec<u8>>,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        Self {
            max_bytes: 5 * 1024,
            connect_timeout: Duration::from_secs(2),
            total_timeout: Duration::from_secs(5),
            allow_special_use_addresses: false,
            extra_roots_pem: Vec::new(),
        }
    }
}

/// A document as fetched: its bytes and the caching headers that bound how
/// long it may be kept.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub body: Vec<u8>,
    pub cache_control: Option<String>,
    pub expires: Option<String>,
    pub age: Option<String>,
}

/// Why a document could not be fetched. The text is safe to show a client
/// and to log (it holds no response body).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("the metadata document's host could not be resolved")]
    Unresolvable,
    #[error("the metadata document's host resolves to a non-public address")]
    SpecialUseAddress,
    #[error("the metadata document could not be fetched: {0}")]
    Transport(String),
    #[error("the metadata document host answered {0}, not 200 (redirects are not followed)")]
    Status(u16),
    #[error("the metadata document is not served as JSON")]
    NotJson,
    #[error("the metadata document is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the metadata document did not arrive in time")]
    Timeout,
}

impl FetchError {
    /// The metrics label of this failure.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Unresolvable => "unresolvable",
            Self::SpecialUseAddress => "special_use_address",
            Self::Transport(_) => "transport",
            Self::Status(_) => "status",
            Self::NotJson => "not_json",
            Self::TooLarge(_) => "too_large",
            Self::Timeout => "timeout",
        }
    }
}

/// Resolves `url`'s host and keeps the addresses a fetch may use.
pub async fn resolve(
    url: &DocumentUrl,
    policy: &FetchPolicy,
) -> Result<Vec<SocketAddr>, FetchError> {
    let port = url.url().port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = match url.url().host() {
        Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
        Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
        Some(url::Host::Domain(name)) => {
            let lookup = tokio::net::lookup_host((name.to_owned(), port));
            tokio::time::timeout(policy.connect_timeout, lookup)
                .await
                .map_err(|_| FetchError::Timeout)?
                .map_err(|_| FetchError::Unresolvable)?
                .collect()
        }
        None => return Err(FetchError::Unresolvable),
    };
    if addrs.is_empty() {
        return Err(FetchError::Unresolvable);
    }
    if policy.allow_special_use_addresses {
        return Ok(addrs);
    }
    // Every address must be public: a name that also resolves to an
    // internal address is an attempt, not an accident.
    if addrs.iter().any(|a| !is_public(a.ip())) {
        return Err(FetchError::SpecialUseAddress);
    }
    Ok(addrs)
}

/// Fetches the document at `url` under `policy`.
pub async fn fetch(url: &DocumentUrl, policy: &FetchPolicy) -> Result<Fetched, FetchError> {
    let addrs = resolve(url, policy).await?;
    let host = url.url().host_str().unwrap_or_default().to_owned();
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .https_only(true)
        .connect_timeout(policy.connect_timeout)
        .timeout(policy.total_timeout)
        .no_proxy()
        .user_agent(concat!("drawbridge/", env!("CARGO_PKG_VERSION")))
        .resolve_to_addrs(&host, &addrs);
    for pem in &policy.extra_roots_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| FetchError::Transport(format!("bad extra root: {e}")))?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    let client = builder
        .build()
        .map_err(|e| FetchError::Transport(e.to_string()))?;
    let started = tokio::time::Instant::now();
    let mut res = client
        .get(url.url().clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(transport)?;
    if res.status() != reqwest::StatusCode::OK {
        return Err(FetchError::Status(res.status().as_u16()));
    }
    let header = |name: reqwest::header::HeaderName| {
        res.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let json = header(reqwest::header::CONTENT_TYPE).is_some_and(|ct| is_json(&ct));
    if !json {
        return Err(FetchError::NotJson);
    }
    let cache_control = header(reqwest::header::CACHE_CONTROL);
    let expires = header(reqwest::header::EXPIRES);
    let age = header(reqwest::header::AGE);
    if res
        .content_length()
        .is_some_and(|n| n > policy.max_bytes as u64)
    {
        return Err(FetchError::TooLarge(policy.max_bytes));
    }
    let mut body = Vec::new();
    loop {
        let left = policy.total_timeout.saturating_sub(started.elapsed());
        let chunk = tokio::time::timeout(left, res.chunk())
            .await
            .map_err(|_| FetchError::Timeout)?
            .map_err(transport)?;
        let Some(chunk) = chunk else { break };
        if body.len() + chunk.len() > policy.max_bytes {
            return Err(FetchError::TooLarge(policy.max_bytes));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched {
        body,
        cache_control,
        expires,
        age,
    })
}

fn transport(e: reqwest::Error) -> FetchError {
    if e.is_timeout() {
        FetchError::Timeout
    } else if e.is_connect() {
        FetchError::Transport("could not connect".into())
    } else {
        FetchError::Transport("the connection failed".into())
    }
}

/// `application/json` or any `+json` type, parameters aside.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_json_content_types_count() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(is_json("application/client-metadata+json"));
        assert!(!is_json("text/html"));
        assert!(!is_json("text/json"));
        assert!(!is_json(""));
    }

    #[actix_web::test]
    async fn a_name_or_literal_that_resolves_to_a_special_use_address_is_refused_before_connecting()
    {
        let policy = FetchPolicy::default();
        for raw in [
            "https://127.0.0.1/client",
            "https://[::1]/client",
            "https://[::ffff:169.254.169.254]/client",
            "https://localhost/client",
        ] {
            let url = DocumentUrl::parse(raw).unwrap();
            assert_eq!(
                fetch(&url, &policy).await.unwrap_err(),
                FetchError::SpecialUseAddress,
                "{raw}"
            );
        }
    }
}
