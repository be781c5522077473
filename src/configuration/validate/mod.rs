//! Validation: [`Settings`] become a [`Config`] whose values are known good.
//! One module per settings section; [`Config::validate`] runs them in turn
//! and the first problem found stops start-up.

mod access;
mod clients;
mod gateway;
mod oauth;
mod operations;
mod pages;
mod rules;
mod server;
mod storage;
mod tls;
mod upstream;

use std::time::Duration;

use super::sections::{
    AccessConfig, ClientsConfig, GatewayConfig, OAuthConfig, PagesConfig, ServerConfig,
    StorageConfig, TelemetryConfig, TokensConfig, UpstreamConfig,
};
use super::{AdminSettings, AuditSettings, ConfigError, RateLimitSettings, Settings};
use crate::domain::{Glob, RegistrationPolicy};

pub use access::{read_list_file, ListKind};
pub use operations::LogFormat;
pub use storage::{StorageBackend, StorageMode};
pub use upstream::UpstreamProvider;

/// The validated configuration the service runs with, by section.
#[derive(Debug, Clone)]
pub struct Config {
    /// The raw settings it was made from (`check-config` prints them).
    settings: Settings,
    pub server: ServerConfig,
    pub upstream: UpstreamConfig,
    pub storage: StorageConfig,
    pub clients: ClientsConfig,
    /// What a registration (or a metadata document) may ask for.
    pub registration: RegistrationPolicy,
    pub tokens: TokensConfig,
    pub oauth: OAuthConfig,
    pub gateway: GatewayConfig,
    pub rate_limit: RateLimitSettings,
    pub admin: AdminSettings,
    pub audit: AuditSettings,
    pub telemetry: TelemetryConfig,
    /// The operator's name and logo on the pages people see.
    pub pages: PagesConfig,
    /// Who may sign in.
    pub access: AccessConfig,
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
        let tool_scopes = gateway::tool_scopes(s, &scopes.supported, scopes.google_aliases)?;
        let log_format = operations::telemetry(s)?;
        let access = access::validate(s)?;
        let pages = pages::validate(s)?;
        let seconds = |n: i64| Duration::from_secs(n.max(0) as u64);
        let millis = |n: i64| Duration::from_millis(n.max(0) as u64);
        let u = &s.upstream;
        let g = &s.gateway;
        Ok(Self {
            server: ServerConfig {
                base_url: server.base_url,
                base_url_configured: !s.server.base_url.is_empty(),
                host: s.server.host.clone(),
                port: s.server.port as u16,
                workers: s.server.workers as usize,
                max_body_bytes: server.max_body_bytes,
                shutdown_timeout: seconds(s.server.shutdown_timeout_seconds),
                head_read_timeout: seconds(s.server.head_read_timeout_seconds),
                body_read_timeout: seconds(s.server.body_read_timeout_seconds),
                max_connections_per_address: s.server.max_connections_per_address as u32,
                trusted_proxies,
                cors_allowed_origins: s.server.cors_allowed_origins.clone(),
                hsts: server.hsts,
                tls_files: server.tls_files,
                acme: server.acme,
                http_redirect_port: server.http_redirect_port,
            },
            upstream: UpstreamConfig {
                provider: identity.provider,
                google: identity.google,
                issuer: u.issuer.clone(),
                auth_uri: u.auth_uri.clone(),
                token_uri: u.token_uri.clone(),
                userinfo_uri: u.userinfo_uri.clone(),
                revocation_uri: u.revocation_uri.clone(),
                jwks_uri: u.jwks_uri.clone(),
                connect_timeout: timeouts.connect,
                timeout: timeouts.total,
                revoke_on_revoke: u.revoke_upstream_on_revoke,
                ca_pem: rules::pem_roots("upstream.ca_file", &u.ca_file)?,
            },
            storage,
            clients,
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
            tokens,
            oauth: OAuthConfig {
                realm: s.auth.realm.clone(),
                introspection_secret: s.oauth.introspection_secret.clone(),
                allow_custom_upstream_clients: s.oauth.allow_custom_upstream_clients,
                allow_direct_upstream_credentials: s.oauth.allow_direct_upstream_credentials,
                service_documentation: Some(s.oauth.service_documentation.clone())
                    .filter(|d| !d.is_empty()),
                cimd: oauth::cimd(&s.oauth.cimd)?,
            },
            gateway: GatewayConfig {
                path: g.path.clone(),
                upstream_url: g.upstream_url.clone(),
                upstream_token_header: g.upstream_token_header.clone(),
                identity_headers: g.identity_headers,
                scopes: gateway_scopes,
                connect_timeout: millis(g.connect_timeout_ms),
                response_timeout: millis(g.response_timeout_ms),
                max_body_bytes: g.max_body_bytes.max(0) as usize,
                tool_scopes,
                filter_tools_list: g.filter_tools_list,
            },
            rate_limit: s.rate_limit.clone(),
            admin: s.admin.clone(),
            audit: s.audit.clone(),
            telemetry: TelemetryConfig {
                log_level: s.telemetry.log_level.clone(),
                log_format,
            },
            pages,
            access,
            settings,
        })
    }

    /// The raw settings, for `check-config` (print them through
    /// [`Settings::masked`]).
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The issuer and prefix of every URL this server advertises, without a
    /// trailing slash.
    pub fn public_url(&self, path: &str) -> String {
        format!(
            "{}{path}",
            self.server.base_url.as_str().trim_end_matches('/')
        )
    }

    pub fn issuer(&self) -> String {
        self.public_url("")
    }

    /// The path of `BASE_URL` without a trailing slash (`""` at the root):
    /// an issuer with a path (`https://host/drawbridge`).
    pub fn base_path(&self) -> &str {
        self.server.base_url.path().trim_end_matches('/')
    }

    /// The path the browser uses for `path` of this server: under
    /// `BASE_URL`'s path when the issuer has one (a proxy strips it).
    pub fn public_path(&self, path: &str) -> String {
        format!("{}{path}", self.base_path())
    }

    /// A well-known URI for something at `path` of this origin (RFC 8414
    /// §3.1, RFC 9728 §3.1): the well-known segment goes between the origin
    /// and the path.
    pub fn well_known_url(&self, name: &str, path: &str) -> String {
        let origin = self.server.base_url.origin().ascii_serialization();
        format!("{origin}/.well-known/{name}{path}")
    }

    /// Where the authorization server's metadata is (RFC 8414 §3.1).
    pub fn authorization_server_metadata_url(&self) -> String {
        self.well_known_url("oauth-authorization-server", self.base_path())
    }

    /// Where the gateway's protected-resource metadata is (RFC 9728 §3.1).
    pub fn resource_metadata_url(&self) -> String {
        let path = format!("{}{}", self.base_path(), self.gateway.path);
        self.well_known_url("oauth-protected-resource", &path)
    }

    /// The protected resource (RFC 8707 / RFC 9728): the gateway's URL.
    pub fn resource(&self) -> String {
        self.public_url(&self.gateway.path)
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
