//! Validation: [`Settings`] become a [`Config`] whose values are known good.
//! One module per settings section; [`Config::validate`] runs them in turn
//! and the first problem found stops start-up.

mod clients;
mod gateway;
mod oauth;
mod operations;
mod rules;
mod server;
mod storage;
mod upstream;

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::{ConfigError, GoogleCredentials, Settings};
use crate::domain::{Glob, RegistrationPolicy, ScopeSet};

pub use operations::LogFormat;
pub use storage::StorageMode;
pub use upstream::UpstreamProvider;

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
    /// How log lines are written (`LOG_FORMAT`).
    pub log_format: LogFormat,
}

impl Config {
    pub fn validate(settings: Settings) -> Result<Self, ConfigError> {
        let s = &settings;
        let server = server::validate(s)?;
        let identity = upstream::identity(s)?;
        let storage = storage::validate(s)?;
        let scopes = oauth::scopes(s, identity.provider == UpstreamProvider::Google)?;
        gateway::auth(s)?;
        let clients = clients::validate(s)?;
        let tokens = oauth::tokens(s, &scopes)?;
        let timeouts = upstream::endpoints(s, &identity)?;
        let trusted_proxies = operations::rate_limit(s)?;
        operations::audit_and_admin(s)?;
        let gateway_scopes = gateway::validate(s, scopes.google_aliases)?;
        let log_format = operations::telemetry(s)?;
        Ok(Self {
            base_url: server.base_url,
            provider: identity.provider,
            google: identity.google,
            storage_mode: storage.mode,
            credentials_dir: storage.credentials_dir,
            flush_every_write: storage.flush_every_write,
            registration: RegistrationPolicy {
                allowed_redirect_uris: s
                    .oauth
                    .allowed_redirect_uris
                    .iter()
                    .map(Glob::new)
                    .collect(),
                supported_scopes: scopes.supported,
                google_scope_aliases: scopes.google_aliases,
                allow_custom_upstream_clients: s.oauth.allow_custom_upstream_clients,
            },
            client_expiry: clients.expiry,
            unused_client_expiry: clients.unused_expiry,
            cleanup_interval: clients.cleanup_interval,
            backup_interval: storage.backup_interval,
            max_clients: clients.max_clients,
            max_unused_per_address: clients.max_unused_per_address,
            evict_unused_after: clients.evict_unused_after,
            max_body_bytes: server.max_body_bytes,
            default_scopes: tokens.default_scopes,
            passthrough: tokens.passthrough,
            access_token_ttl: tokens.access_ttl,
            code_ttl: tokens.code_ttl,
            transaction_ttl: tokens.transaction_ttl,
            refresh_grace: tokens.refresh_grace,
            refresh_idle: tokens.refresh_idle,
            grant_lifetime: tokens.grant_lifetime,
            upstream_connect_timeout: timeouts.connect,
            upstream_timeout: timeouts.total,
            trusted_proxies,
            gateway_scopes,
            log_format,
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

    /// The path of `BASE_URL` without a trailing slash (`""` at the root):
    /// an issuer with a path (`https://host/drawbridge`).
    pub fn base_path(&self) -> &str {
        self.base_url.path().trim_end_matches('/')
    }

    /// A well-known URI for something at `path` of this origin (RFC 8414
    /// §3.1, RFC 9728 §3.1): the well-known segment goes between the origin
    /// and the path.
    pub fn well_known_url(&self, name: &str, path: &str) -> String {
        let origin = self.base_url.origin().ascii_serialization();
        format!("{origin}/.well-known/{name}{path}")
    }

    /// Where the authorization server's metadata is (RFC 8414 §3.1).
    pub fn authorization_server_metadata_url(&self) -> String {
        self.well_known_url("oauth-authorization-server", self.base_path())
    }

    /// Where the gateway's protected-resource metadata is (RFC 9728 §3.1).
    pub fn resource_metadata_url(&self) -> String {
        let path = format!("{}{}", self.base_path(), self.settings.gateway.path);
        self.well_known_url("oauth-protected-resource", &path)
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
