use std::fmt;
use std::ops::Range;

use url::{Host, Url};

use super::Glob;

/// Longest redirect URI accepted.
const MAX_LEN: usize = 2000;
/// Schemes that run code or read local data in a browser; never a redirect.
const FORBIDDEN_SCHEMES: &[&str] = &[
    "javascript",
    "data",
    "file",
    "vbscript",
    "blob",
    "about",
    "filesystem",
    "view-source",
    "ws",
    "wss",
];

/// Schemes of MCP clients in use today that are not in the reverse-domain
/// form RFC 8252 §7.1 asks of private-use schemes.
const KNOWN_APP_SCHEMES: &[&str] = &["cursor", "vscode", "vscode-insiders", "windsurf"];

/// Whether `scheme` may carry a native app's redirect: the reverse-domain
/// form of RFC 8252 §7.1 (`com.example.app`: at least two dot-separated
/// labels of letters, digits and hyphens), or a known MCP client's scheme.
/// Other schemes (`chrome:`, `mailto:`, `itms-services:`, `ms-settings:`,
/// `jar:`) belong to browsers and operating systems, not to apps.
fn is_app_scheme(scheme: &str) -> bool {
    if KNOWN_APP_SCHEMES.contains(&scheme) {
        return true;
    }
    let labels: Vec<&str> = scheme.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// A redirect URI a client may register: `https`, `http` on a loopback
/// host, or a native app's private-use scheme (`cursor://…`, RFC 8252 §7.1).
/// Kept exactly as the client sent it, since later matching is exact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUri {
    raw: String,
    url: Url,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectUriError {
    #[error("redirect URI is empty")]
    Empty,
    #[error("redirect URI is longer than {MAX_LEN} characters")]
    TooLong,
    #[error("redirect URI contains whitespace, a control character or a backslash")]
    BadCharacters,
    #[error("redirect URI must not contain a fragment (#)")]
    Fragment,
    #[error("redirect URI is not an absolute URI: {0}")]
    Unparseable(String),
    #[error("redirect URI scheme `{0}` is not allowed")]
    ForbiddenScheme(String),
    #[error("redirect URI must not contain user information")]
    UserInfo,
    #[error("redirect URI must not contain `.` or `..` path segments (plain or percent-encoded)")]
    DotSegment,
    #[error("redirect URI host must be written in its plain form: ASCII (punycode for international names), 127.0.0.1 or [::1] for loopback")]
    NonCanonicalHost,
    #[error("plain http redirect URIs are allowed only on loopback (localhost, 127.0.0.1, [::1])")]
    InsecureHttp,
    #[error("redirect URI has no host")]
    NoHost,
    #[error("redirect URI scheme `{0}` is not a native app's private-use scheme: use reverse-domain form such as com.example.app (RFC 8252 §7.1), or ask the operator to name it in oauth.allowed_redirect_uris")]
    NotAppScheme(String),
    #[error("redirect URI is not allowed by this server's allowed_redirect_uris")]
    NotAllowlisted,
}

impl RedirectUri {
    /// Parses a redirect URI, then checks it against the operator's
    /// allowlist when one is configured (an empty list allows all).
    pub fn parse(raw: &str, allowlist: &[Glob]) -> Result<Self, RedirectUriError> {
        if raw.is_empty() {
            return Err(RedirectUriError::Empty);
        }
        if raw.len() > MAX_LEN {
            return Err(RedirectUriError::TooLong);
        }
        if raw
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
        {
            return Err(RedirectUriError::BadCharacters);
        }
        if raw.contains('#') {
            return Err(RedirectUriError::Fragment);
        }
        let url = Url::parse(raw).map_err(|e| RedirectUriError::Unparseable(e.to_string()))?;
        let scheme = url.scheme();
        if FORBIDDEN_SCHEMES.contains(&scheme) {
            return Err(RedirectUriError::ForbiddenScheme(scheme.to_owned()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(RedirectUriError::UserInfo);
        }
        if has_dot_segment(raw) {
            return Err(RedirectUriError::DotSegment);
        }
        // Browsers and the URL parser rewrite `1２7.0.0.1`, `127.1`,
        // `2130706433`, `%`-escapes and Unicode names into another host:
        // the host must already be in the form they reach.
        if (scheme == "http" || scheme == "https")
            && !url
                .host_str()
                .zip(authority(raw).map(|(host, _)| &raw[host]))
                .is_some_and(|(parsed, written)| parsed.eq_ignore_ascii_case(written))
        {
            return Err(RedirectUriError::NonCanonicalHost);
        }
        let allowlisted = allowlist.iter().any(|g| g.matches(raw));
        match scheme {
            "https" if url.host().is_none() => return Err(RedirectUriError::NoHost),
            "http" if !is_loopback(&url) => return Err(RedirectUriError::InsecureHttp),
            "https" | "http" => {}
            // The operator's allowlist may name another app scheme, by
            // writing it out (`myapp:/cb`, `myapp:*`): a wildcard such as
            // `*` or `h*` never opens up browser or system schemes.
            other
                if !is_app_scheme(other)
                    && !allowlist.iter().any(|g| {
                        g.as_str().starts_with(&format!("{other}:")) && g.matches(raw)
                    }) =>
            {
                return Err(RedirectUriError::NotAppScheme(other.to_owned()))
            }
            _ => {}
        }
        if !allowlist.is_empty() && !allowlisted {
            return Err(RedirectUriError::NotAllowlisted);
        }
        Ok(Self {
            raw: raw.to_owned(),
            url,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Whether this is an `http` URI on a loopback host, whose port a native
    /// client may choose at authorization time (RFC 8252 §7.3).
    pub fn is_loopback(&self) -> bool {
        self.url.scheme() == "http" && is_loopback(&self.url)
    }

    /// Whether the host is the user's own machine, whatever the scheme
    /// (`localhost`, 127.0.0.0/8, `::1`): no place to send a web client.
    pub fn is_on_loopback_host(&self) -> bool {
        is_loopback(&self.url)
            || matches!(self.url.host(), Some(Host::Ipv4(ip)) if ip.is_loopback())
    }
}

/// Read as the string the client registered (exact matching, display).
impl std::ops::Deref for RedirectUri {
    type Target = str;

    fn deref(&self) -> &str {
        &self.raw
    }
}

impl PartialEq<str> for RedirectUri {
    fn eq(&self, other: &str) -> bool {
        self.raw == other
    }
}

/// Stored as the string it was registered as (records keep their bytes).
impl serde::Serialize for RedirectUri {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}

/// Read back from this server's own records, where it was validated under
/// the policy of its day (an allowlist may since have changed): only
/// parsed as a URL again, not re-judged.
impl<'de> serde::Deserialize<'de> for RedirectUri {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        let url = Url::parse(&raw).map_err(serde::de::Error::custom)?;
        Ok(Self { raw, url })
    }
}

/// Whether `requested` (from an authorization request) matches the
/// registered `registered`: as strings (OAuth 2.1 §4.1.1), except that a
/// loopback `http` URI may name any port (RFC 8252 §7.3). Nothing is
/// normalised: case, dot segments or another spelling of the host differ.
pub fn matches_registered(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    let (Ok(a), Ok(b)) = (Url::parse(registered), Url::parse(requested)) else {
        return false;
    };
    let loopback = |u: &Url| u.scheme() == "http" && is_loopback(u);
    if !loopback(&a) || !loopback(&b) {
        return false;
    }
    match (without_port(registered), without_port(requested)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// Where the host and the port (with its `:`) of `raw`'s authority are.
fn authority(raw: &str) -> Option<(Range<usize>, Range<usize>)> {
    let start = raw.find("://")? + 3;
    let end = raw[start..]
        .find(['/', '?', '#'])
        .map_or(raw.len(), |i| start + i);
    let host_start = raw[start..end].rfind('@').map_or(start, |i| start + i + 1);
    let host_port = &raw[host_start..end];
    let host_len = if host_port.starts_with('[') {
        host_port.find(']')? + 1
    } else {
        host_port.find(':').unwrap_or(host_port.len())
    };
    Some((
        host_start..host_start + host_len,
        host_start + host_len..end,
    ))
}

/// `raw` split around its port: everything before it and everything after.
fn without_port(raw: &str) -> Option<(&str, &str)> {
    let (host, port) = authority(raw)?;
    let digits = &raw[port.clone()];
    if !(digits.is_empty()
        || digits
            .strip_prefix(':')
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit())))
    {
        return None;
    }
    Some((&raw[..host.end], &raw[port.end..]))
}

/// Whether the path holds a `.` or `..` segment, which the URL parser (and
/// browsers) would remove, also when written `%2e`.
pub fn has_dot_segment(raw: &str) -> bool {
    let path = raw.split('?').next().unwrap_or(raw);
    path.split('/').any(|segment| {
        let s = segment.to_ascii_lowercase().replace("%2e", ".");
        s == "." || s == ".."
    })
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
        Some(Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
        None => false,
    }
}

impl fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests;
