//! The validated configuration by section: what the rest of Drawbridge
//! reads. Values are typed (durations, URLs, scopes, paths) and already
//! checked; the raw [`Settings`](super::Settings) stay inside
//! `configuration/` (and `check-config`, which prints them masked).

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::{GoogleCredentials, LogFormat, Masked, StorageMode, UpstreamProvider};
use crate::cimd::{FetchPolicy, Lifetimes, UrlPolicy};
use crate::domain::{Cidr, ScopeSet};
use crate::mcp::ToolScopes;

/// `[server]`: the listener, its limits and the public base URL.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The public URL (issuer and prefix of every advertised endpoint).
    pub base_url: Url,
    /// Whether `base_url` was set (else derived from host and port).
    pub base_url_configured: bool,
    pub host: String,
    pub port: u16,
    /// HTTP workers; 0: one per core.
    pub workers: usize,
    pub max_body_bytes: usize,
    pub shutdown_timeout: Duration,
    pub head_read_timeout: Duration,
    pub body_read_timeout: Duration,
    /// Open connections one address may hold; 0: no cap.
    pub max_connections_per_address: u32,
    /// Proxies whose forwarding headers name the client.
    pub trusted_proxies: Vec<Cidr>,
    /// Origins browser clients may call from (`*`: any; empty: no CORS).
    pub cors_allowed_origins: Vec<String>,
    /// With `enable_https`: the certificate chain (PEM) and the PKCS#8 key.
    pub tls_files: Option<(PathBuf, PathBuf)>,
    /// With `enable_https` and `tls.acme.domains`: certificates from ACME
    /// (then `tls_files` is `None`).
    pub acme: Option<AcmeConfig>,
    /// The plain-HTTP port that redirects to HTTPS (and answers ACME
    /// HTTP-01 challenges).
    pub http_redirect_port: Option<u16>,
    /// The `Strict-Transport-Security` value for HTTPS answers (`None`:
    /// plain HTTP, or turned off).
    pub hsts: Option<String>,
}

/// `[tls.acme]`: automatic certificates (RFC 8555, HTTP-01 answered on
/// the redirect port).
#[derive(Debug, Clone)]
pub struct AcmeConfig {
    pub domains: Vec<String>,
    pub directory_url: Url,
    pub contact: Vec<String>,
    /// Extra roots for the ACME server's HTTPS (PEM).
    pub ca_pem: Option<Vec<u8>>,
    pub retry: Duration,
}

impl ServerConfig {
    /// Whether the public listener serves HTTPS (from files or ACME).
    pub fn https(&self) -> bool {
        self.tls_files.is_some() || self.acme.is_some()
    }
}

/// `[upstream]` and `[google]`: the identity provider Drawbridge signs
/// users in with.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub provider: UpstreamProvider,
    /// The operator's client at Google (`google` provider).
    pub google: Option<GoogleCredentials>,
    /// Endpoint overrides (empty: the provider's own or discovered ones).
    pub issuer: String,
    pub auth_uri: String,
    pub token_uri: String,
    pub userinfo_uri: String,
    pub revocation_uri: String,
    pub jwks_uri: String,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// Revoking Drawbridge's tokens also revokes the user's upstream grant.
    pub revoke_on_revoke: bool,
    /// Extra roots for the provider's HTTPS (PEM): a private CA.
    pub ca_pem: Option<Vec<u8>>,
}

/// `[storage]`: where and how state is kept.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    pub mode: StorageMode,
    pub credentials_dir: PathBuf,
    pub flush_every_write: bool,
    pub backup_interval: Duration,
    /// The key itself (`AUTH_ENCRYPTION_KEY`), when given.
    pub encryption_key: Masked,
    pub encryption_key_file: PathBuf,
    pub allow_insecure_key_permissions: bool,
    /// Where FILE_ENCRYPTED and FILE_PLAINTEXT keep their records.
    pub backend: super::StorageBackend,
    /// The shared database: always with `backend = "postgres"`; with sled,
    /// when a valid `database_url` is set (a migration's target).
    pub postgres: Option<crate::storage::PgOptions>,
    /// Several instances on one database: the janitor's lease, renewed every
    /// third of it by its holder and taken over within it when that dies.
    pub lease: Duration,
}

/// `[clients]`: registered clients' lifetimes and the registry's bounds.
#[derive(Debug, Clone)]
pub struct ClientsConfig {
    pub expiry: Duration,
    pub unused_expiry: Duration,
    pub cleanup_interval: Duration,
    pub max_clients: usize,
    /// Never-used registrations one address (an IPv6 /64) may hold; 0: no cap.
    pub max_unused_per_address: usize,
    /// A full registry evicts its oldest never-used registration once it is
    /// this old, instead of refusing; `None`: never evict.
    pub evict_unused_after: Option<Duration>,
}

/// `[oauth]` and `[session]`: the tokens Drawbridge issues (seconds).
#[derive(Debug, Clone)]
pub struct TokensConfig {
    /// Scopes asked for when an authorization request names none.
    pub default_scopes: ScopeSet,
    /// `token_mode = "passthrough"`: the token endpoint returns the upstream's tokens.
    pub passthrough: bool,
    pub access_ttl: i64,
    pub code_ttl: i64,
    pub transaction_ttl: i64,
    pub refresh_grace: i64,
    /// A refresh token unused this long expires (SESSION_TIMEOUT_MINUTES).
    pub refresh_idle: i64,
    /// No token of a grant outlives this (MAX_SESSION_LIFETIME_HOURS).
    pub grant_lifetime: i64,
}

/// `[oauth]` and `[auth]`: how the OAuth endpoints behave.
#[derive(Debug, Clone)]
pub struct OAuthConfig {
    /// The realm of `WWW-Authenticate` challenges.
    pub realm: String,
    /// Resource servers' secret for introspection (empty: off).
    pub introspection_secret: Masked,
    pub allow_custom_upstream_clients: bool,
    pub allow_direct_upstream_credentials: bool,
    pub service_documentation: Option<String>,
    pub cimd: CimdConfig,
}

/// `[oauth.cimd]`: Client ID Metadata Documents — which URLs are taken,
/// how a document is fetched, how long it is kept.
#[derive(Debug, Clone)]
pub struct CimdConfig {
    pub policy: UrlPolicy,
    pub fetch: FetchPolicy,
    pub lifetimes: Lifetimes,
}

/// `[gateway]`: the protected MCP endpoint in front of the MCP server.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub path: String,
    /// The MCP server (empty: the gateway answers 503).
    pub upstream_url: String,
    pub upstream_token_header: String,
    pub identity_headers: bool,
    /// Scopes a token needs at the gateway (MCP step-up when missing).
    pub scopes: ScopeSet,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    pub max_body_bytes: usize,
    /// Scopes per tool and MCP method (empty: MCP bodies are not read).
    pub tool_scopes: ToolScopes,
    /// `tools/list` answers keep only the tools the token may call.
    pub filter_tools_list: bool,
}

/// `[telemetry]`: log lines.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    pub log_level: String,
    pub log_format: LogFormat,
}

/// `[pages]`: how the pages a person sees name the service.
#[derive(Debug, Clone)]
pub struct PagesConfig {
    /// The operator's name for the service (one line, checked).
    pub service_name: String,
    /// The logo as a `data:` URI (PNG or SVG, size-checked), if any.
    pub logo: Option<String>,
}

/// `[access]`: who may sign in — the configured lists (entries checked)
/// and the files whose entries are added to them (read at start-up and on
/// SIGHUP by [`crate::service::access`]).
#[derive(Debug, Clone, Default)]
pub struct AccessConfig {
    pub allowed_emails: Vec<String>,
    pub allowed_domains: Vec<String>,
    pub google_workspace_domains: Vec<String>,
    pub denied_emails: Vec<String>,
    pub allowed_emails_file: Option<PathBuf>,
    pub denied_emails_file: Option<PathBuf>,
}
