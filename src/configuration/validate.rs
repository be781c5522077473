//! Validation: [`Settings`] become a [`Config`] whose values are known good.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::{ConfigError, GoogleCredentials, Settings};
use crate::domain::{Glob, RegistrationPolicy, ScopeSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageMode {
    FileEncrypted,
    FilePlaintext,
    MemoryOnly,
    MemoryWithBackup,
}

impl StorageMode {
    pub fn as_str(self) -> &'static str {
        match self {
            StorageMode::FileEncrypted => "FILE_ENCRYPTED",
            StorageMode::FilePlaintext => "FILE_PLAINTEXT",
            StorageMode::MemoryOnly => "MEMORY_ONLY",
            StorageMode::MemoryWithBackup => "MEMORY_WITH_BACKUP",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::FileEncrypted,
            Self::FilePlaintext,
            Self::MemoryOnly,
            Self::MemoryWithBackup,
        ]
        .into_iter()
        .find(|m| m.as_str().eq_ignore_ascii_case(raw))
    }

    /// Whether records are kept in the on-disk database.
    pub fn on_disk(self) -> bool {
        matches!(
            self,
            StorageMode::FileEncrypted | StorageMode::FilePlaintext
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProvider {
    Google,
    Oidc,
    Dev,
}

/// The validated configuration the service runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub settings: Settings,
    pub base_url: Url,
    pub provider: UpstreamProvider,
    pub google: Option<GoogleCredentials>,
    pub storage_mode: StorageMode,
    pub credentials_dir: PathBuf,
    pub flush_every_write: bool,
    pub registration: RegistrationPolicy,
    pub client_expiry: Duration,
    pub unused_client_expiry: Duration,
    pub cleanup_interval: Duration,
    pub backup_interval: Duration,
    pub max_clients: usize,
    /// Never-used registrations one address (an IPv6 /64) may hold; 0: no cap.
    pub max_unused_per_address: usize,
    /// A full registry evicts its oldest never-used registration once it is
    /// this old, instead of refusing; `None`: never evict.
    pub evict_unused_after: Option<Duration>,
    pub max_body_bytes: usize,
    /// Scopes asked for when an authorization request names none.
    pub default_scopes: ScopeSet,
    /// `token_mode = "passthrough"`: the token endpoint returns the upstream's tokens.
    pub passthrough: bool,
    pub access_token_ttl: i64,
    pub code_ttl: i64,
    pub transaction_ttl: i64,
    pub refresh_grace: i64,
    /// A refresh token unused this long expires (SESSION_TIMEOUT_MINUTES).
    pub refresh_idle: i64,
    /// No token of a grant outlives this (MAX_SESSION_LIFETIME_HOURS).
    pub grant_lifetime: i64,
    pub upstream_connect_timeout: Duration,
    pub upstream_timeout: Duration,
    pub trusted_proxies: Vec<crate::domain::Cidr>,
    /// Scopes a token needs at the gateway (MCP step-up when missing).
    pub gateway_scopes: ScopeSet,
}

fn err(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::new(key, problem)
}

/// An integer setting within `lo..=hi`.
fn ranged(key: &str, value: i64, lo: i64, hi: i64) -> Result<u64, ConfigError> {
    if (lo..=hi).contains(&value) {
        Ok(value as u64)
    } else {
        Err(err(
            key,
            format!("must be between {lo} and {hi}, got {value}"),
        ))
    }
}

impl Config {
    pub fn validate(settings: Settings) -> Result<Self, ConfigError> {
        let s = &settings;
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
        if s.server.enable_https {
            return Err(err(
                "server.enable_https",
                "TLS termination is not built into this version; serve plain HTTP on loopback behind a TLS proxy",
            ));
        }
        let base_url = base_url(s, port)?;
        let provider = match s.upstream.provider.as_str() {
            "google" => UpstreamProvider::Google,
            "oidc" => UpstreamProvider::Oidc,
            "dev" => UpstreamProvider::Dev,
            other => {
                return Err(err(
                    "upstream.provider",
                    format!("expected google, oidc or dev, got `{other}`"),
                ))
            }
        };
        let google = google_credentials(s)?;
        if provider == UpstreamProvider::Google && google.is_none() {
            return Err(err(
                "upstream.provider",
                "`google` needs google.credentials_file (GOOGLE_OAUTH_CREDENTIALS_FILE) or google.client_id and google.client_secret",
            ));
        }
        if !s.google.redirect_uri.is_empty() {
            absolute_url("google.redirect_uri", &s.google.redirect_uri)?;
        }
        let storage_mode = StorageMode::parse(&s.storage.mode).ok_or_else(|| {
            err("storage.mode", format!("expected FILE_ENCRYPTED, FILE_PLAINTEXT, MEMORY_ONLY or MEMORY_WITH_BACKUP, got `{}`", s.storage.mode))
        })?;
        if s.storage.credentials_dir.trim().is_empty() {
            return Err(err("storage.credentials_dir", "must not be empty"));
        }
        let backup = ranged(
            "storage.backup_interval_seconds",
            s.storage.backup_interval_seconds,
            1,
            86400,
        )?;
        if s.storage.encryption_key_file.trim().is_empty() && s.storage.encryption_key.0.is_empty()
        {
            return Err(err("storage.encryption_key_file", "must not be empty"));
        }
        if !s.storage.encryption_key.0.is_empty() {
            crate::crypto::keyfile::from_env(&s.storage.encryption_key.0).map_err(|_| {
                err(
                    "storage.encryption_key",
                    "expected 32 bytes in base64 (e.g. from: openssl rand -base64 32)",
                )
            })?;
        }
        let flush_every_write = match s.storage.durability.as_str() {
            "immediate" => true,
            "periodic" => false,
            other => {
                return Err(err(
                    "storage.durability",
                    format!("expected immediate or periodic, got `{other}`"),
                ))
            }
        };
        let google_scope_aliases = provider == UpstreamProvider::Google;
        let supported_scopes = ScopeSet::parse(&s.oauth.scopes, google_scope_aliases)
            .map_err(|e| err("oauth.scopes", e.to_string()))?;
        if supported_scopes.is_empty() {
            return Err(err("oauth.scopes", "must list at least one scope"));
        }
        if !s.oauth.service_documentation.is_empty() {
            absolute_url(
                "oauth.service_documentation",
                &s.oauth.service_documentation,
            )?;
        }
        // The gateway always checks tokens: an open gateway would hand any
        // caller the users' Google tokens. `false` is refused, not ignored.
        if !s.auth.enabled {
            return Err(err(
                "auth.enabled",
                "false is not supported: the MCP gateway always requires a Drawbridge token (it forwards users' Google tokens); to serve the MCP server without authentication, point clients at it directly instead of at Drawbridge",
            ));
        }
        let hours = ranged("clients.expiry_hours", s.clients.expiry_hours, 1, 24 * 365)?;
        let unused = ranged(
            "clients.unused_expiry_minutes",
            s.clients.unused_expiry_minutes,
            1,
            60 * 24 * 365,
        )?;
        let cleanup = ranged(
            "clients.cleanup_interval_minutes",
            s.clients.cleanup_interval_minutes,
            1,
            60 * 24 * 7,
        )?;
        let max_clients =
            ranged("clients.max_clients", s.clients.max_clients, 1, 100_000_000)? as usize;
        // A flood limit like the rate limits: off with them (benchmarks).
        let max_unused_per_address = ranged(
            "clients.max_unused_per_address",
            s.clients.max_unused_per_address,
            0,
            100_000_000,
        )? as usize
            * usize::from(s.rate_limit.enabled);
        let evict_unused_after = ranged(
            "clients.evict_unused_after_minutes",
            s.clients.evict_unused_after_minutes,
            0,
            60 * 24 * 365,
        )?;
        ranged(
            "session.timeout_minutes",
            s.session.timeout_minutes,
            1,
            60 * 24 * 30,
        )?;
        ranged(
            "session.max_lifetime_hours",
            s.session.max_lifetime_hours,
            1,
            24 * 365,
        )?;
        let default_scopes = if s.oauth.default_scopes.trim().is_empty() {
            supported_scopes.clone()
        } else {
            let d = ScopeSet::parse(&s.oauth.default_scopes, google_scope_aliases)
                .map_err(|e| err("oauth.default_scopes", e.to_string()))?;
            d.ensure_within(&supported_scopes)
                .map_err(|e| err("oauth.default_scopes", e.to_string()))?;
            d
        };
        let passthrough = match s.oauth.token_mode.as_str() {
            "proxy" => false,
            "passthrough" => true,
            other => {
                return Err(err(
                    "oauth.token_mode",
                    format!("expected proxy or passthrough, got `{other}`"),
                ))
            }
        };
        let access = ranged(
            "oauth.access_token_minutes",
            s.oauth.access_token_minutes,
            1,
            24 * 60,
        )? as i64;
        let code_ttl = ranged("oauth.code_ttl_seconds", s.oauth.code_ttl_seconds, 10, 300)? as i64;
        let txn = ranged(
            "oauth.transaction_ttl_minutes",
            s.oauth.transaction_ttl_minutes,
            1,
            60,
        )? as i64;
        let grace = ranged(
            "oauth.refresh_grace_seconds",
            s.oauth.refresh_grace_seconds,
            0,
            300,
        )? as i64;
        let connect = ranged(
            "upstream.connect_timeout_ms",
            s.upstream.connect_timeout_ms,
            10,
            60_000,
        )?;
        let total = ranged("upstream.timeout_ms", s.upstream.timeout_ms, 10, 300_000)?;
        for (key, value) in [
            ("upstream.issuer", &s.upstream.issuer),
            ("upstream.auth_uri", &s.upstream.auth_uri),
            ("upstream.token_uri", &s.upstream.token_uri),
            ("upstream.userinfo_uri", &s.upstream.userinfo_uri),
            ("upstream.revocation_uri", &s.upstream.revocation_uri),
            ("upstream.jwks_uri", &s.upstream.jwks_uri),
        ] {
            if !value.is_empty() {
                absolute_url(key, value)?;
            }
        }
        // The issuer's keys decide who signs in, the token endpoint sees the
        // real client secret and users' tokens, the authorization endpoint
        // the user's browser: none of them over plain HTTP beyond this
        // machine (Google's credentials.json included).
        let from_file = |f: fn(&super::google::GoogleCredentials) -> &Option<String>| {
            google
                .as_ref()
                .and_then(|g| f(g).clone())
                .unwrap_or_default()
        };
        let file_auth = from_file(|g| &g.auth_uri);
        let file_token = from_file(|g| &g.token_uri);
        for (key, value) in [
            ("upstream.issuer", &s.upstream.issuer),
            ("upstream.jwks_uri", &s.upstream.jwks_uri),
            ("upstream.auth_uri", &s.upstream.auth_uri),
            ("upstream.token_uri", &s.upstream.token_uri),
            ("upstream.userinfo_uri", &s.upstream.userinfo_uri),
            ("upstream.revocation_uri", &s.upstream.revocation_uri),
            ("google.credentials_file (auth_uri)", &file_auth),
            ("google.credentials_file (token_uri)", &file_token),
        ] {
            let url = Url::parse(value).ok().filter(|u| u.scheme() == "http");
            if let Some(host) = url.as_ref().and_then(|u| u.host_str()) {
                if !is_loopback_host(host) {
                    return Err(err(key, format!("`{value}` uses http:// on a non-loopback host: the upstream's endpoints, ID tokens and keys must come over https://")));
                }
            }
        }
        if provider == UpstreamProvider::Google
            && !s.upstream.issuer.is_empty()
            && s.upstream.jwks_uri.is_empty()
        {
            return Err(err(
                "upstream.jwks_uri",
                "the google provider with another upstream.issuer needs that issuer's JWKS URI (upstream.jwks_uri) to check its ID tokens",
            ));
        }
        if provider == UpstreamProvider::Oidc && s.upstream.issuer.is_empty() {
            return Err(err(
                "upstream.issuer",
                "the oidc provider needs the issuer URL (discovery)",
            ));
        }
        if provider == UpstreamProvider::Oidc && google.is_none() {
            return Err(err("google.client_id", "the oidc provider needs the client id and secret registered at the issuer (google.client_id / google.client_secret)"));
        }
        if provider == UpstreamProvider::Dev && !is_loopback_host(&s.server.host) {
            return Err(err("upstream.provider", format!("the dev provider refuses to listen on `{}`: use a loopback address such as 127.0.0.1", s.server.host)));
        }
        let r = &s.rate_limit;
        ranged(
            "rate_limit.registrations_per_minute",
            r.registrations_per_minute,
            1,
            1_000_000,
        )?;
        ranged(
            "rate_limit.registration_burst",
            r.registration_burst,
            1,
            1_000_000,
        )?;
        ranged(
            "rate_limit.global_registrations_per_minute",
            r.global_registrations_per_minute,
            1,
            100_000_000,
        )?;
        ranged(
            "rate_limit.token_per_minute",
            r.token_per_minute,
            1,
            100_000_000,
        )?;
        ranged(
            "rate_limit.authorize_per_minute",
            r.authorize_per_minute,
            1,
            100_000_000,
        )?;
        ranged(
            "rate_limit.failed_auth_per_minute",
            r.failed_auth_per_minute,
            1,
            1_000_000,
        )?;
        let trusted_proxies = r
            .trusted_proxies
            .iter()
            .map(|p| {
                crate::domain::Cidr::parse(p).ok_or_else(|| {
                    err(
                        "rate_limit.trusted_proxies",
                        format!("`{p}` is not an IP address or CIDR range"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !["email", "hashed", "none"].contains(&s.audit.user_field.as_str()) {
            return Err(err(
                "audit.user_field",
                format!(
                    "expected email, hashed or none, got `{}`",
                    s.audit.user_field
                ),
            ));
        }
        if !s.admin.listen.is_empty() && s.admin.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(err(
                "admin.listen",
                format!(
                    "expected an address such as 127.0.0.1:8003, got `{}`",
                    s.admin.listen
                ),
            ));
        }
        if !s.admin.token.0.is_empty() && s.admin.token.0.len() < 16 {
            return Err(err("admin.token", "must be at least 16 characters"));
        }
        let path = &s.gateway.path;
        if !path.starts_with('/')
            || path.len() < 2
            || path.ends_with('/')
            || path.contains(['?', '#', ' '])
        {
            return Err(err(
                "gateway.path",
                format!("expected an absolute path such as /mcp, got `{path}`"),
            ));
        }
        let g = &s.gateway;
        if !g.upstream_url.is_empty() {
            absolute_url("gateway.upstream_url", &g.upstream_url)?;
        }
        if g.upstream_token_header.trim().is_empty()
            || !g
                .upstream_token_header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(err(
                "gateway.upstream_token_header",
                "must be an HTTP header name",
            ));
        }
        ranged(
            "gateway.connect_timeout_ms",
            g.connect_timeout_ms,
            10,
            60_000,
        )?;
        ranged(
            "gateway.response_timeout_ms",
            g.response_timeout_ms,
            10,
            600_000,
        )?;
        ranged("gateway.max_body_bytes", g.max_body_bytes, 1024, 64 << 20)?;
        let gateway_scopes = ScopeSet::parse(&g.required_scopes, google_scope_aliases)
            .map_err(|e| err("gateway.required_scopes", e.to_string()))?;
        tracing_subscriber::EnvFilter::try_new(&s.telemetry.log_level)
            .map_err(|e| err("telemetry.log_level", e.to_string()))?;
        Ok(Self {
            base_url,
            provider,
            google,
            storage_mode,
            credentials_dir: PathBuf::from(&s.storage.credentials_dir),
            flush_every_write,
            registration: RegistrationPolicy {
                allowed_redirect_uris: s
                    .oauth
                    .allowed_redirect_uris
                    .iter()
                    .map(Glob::new)
                    .collect(),
                supported_scopes,
                google_scope_aliases,
                allow_custom_upstream_clients: s.oauth.allow_custom_upstream_clients,
            },
            client_expiry: Duration::from_secs(hours * 3600),
            unused_client_expiry: Duration::from_secs(unused * 60),
            cleanup_interval: Duration::from_secs(cleanup * 60),
            backup_interval: Duration::from_secs(backup),
            max_clients,
            max_unused_per_address,
            evict_unused_after: (evict_unused_after > 0)
                .then(|| Duration::from_secs(evict_unused_after * 60)),
            max_body_bytes,
            default_scopes,
            passthrough,
            access_token_ttl: access * 60,
            code_ttl,
            transaction_ttl: txn * 60,
            refresh_grace: grace,
            refresh_idle: s.session.timeout_minutes * 60,
            grant_lifetime: s.session.max_lifetime_hours * 3600,
            upstream_connect_timeout: Duration::from_millis(connect),
            upstream_timeout: Duration::from_millis(total),
            trusted_proxies,
            gateway_scopes,
            settings,
        })
    }

    /// The issuer and prefix of every URL this server advertises, without a
    /// trailing slash.
    pub fn public_url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url.as_str().trim_end_matches('/'))
    }

    pub fn issuer(&self) -> String {
        self.public_url("")
    }

    /// The protected resource (RFC 8707 / RFC 9728): the gateway's URL.
    pub fn resource(&self) -> String {
        self.public_url(&self.settings.gateway.path)
    }

    /// Drawbridge's own callback, registered at the upstream provider.
    pub fn callback_url(&self) -> String {
        if self.settings.google.redirect_uri.is_empty() {
            self.public_url("/oauth/callback")
        } else {
            self.settings.google.redirect_uri.clone()
        }
    }
}

fn absolute_url(key: &str, raw: &str) -> Result<Url, ConfigError> {
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

fn base_url(s: &Settings, port: u64) -> Result<Url, ConfigError> {
    if s.server.base_url.is_empty() {
        let host = if s.server.host.contains(':') {
            format!("[{}]", s.server.host)
        } else {
            s.server.host.clone()
        };
        return absolute_url("server.host", &format!("http://{host}:{port}"));
    }
    let url = absolute_url("server.base_url", &s.server.base_url)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(err("server.base_url", "must not have a query or fragment"));
    }
    Ok(url)
}

fn google_credentials(s: &Settings) -> Result<Option<GoogleCredentials>, ConfigError> {
    let g = &s.google;
    if !g.credentials_file.is_empty() {
        let mut creds = GoogleCredentials::from_file(std::path::Path::new(&g.credentials_file))
            .map_err(|e| err("google.credentials_file", e))?;
        // Individual variables win over the file, as in the source document.
        if !g.client_id.is_empty() {
            creds.client_id = g.client_id.clone();
        }
        if !g.client_secret.0.is_empty() {
            creds.client_secret = g.client_secret.0.clone();
        }
        return Ok(Some(creds));
    }
    match (g.client_id.is_empty(), g.client_secret.0.is_empty()) {
        (true, true) => Ok(None),
        (false, _) => Ok(Some(GoogleCredentials {
            client_id: g.client_id.clone(),
            client_secret: g.client_secret.0.clone(),
            auth_uri: None,
            token_uri: None,
            redirect_uris: vec![],
        })),
        (true, false) => Err(err(
            "google.client_id",
            "google.client_secret is set but google.client_id is not",
        )),
    }
}

fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
