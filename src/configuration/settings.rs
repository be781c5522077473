//! The raw settings as read from `config.toml` and the environment. Every
//! field has a default, so an empty file (or none) is a working demo.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub server: ServerSettings,
    pub auth: AuthSettings,
    pub upstream: UpstreamSettings,
    pub google: GoogleSettings,
    pub oauth: OAuthSettings,
    pub tls: TlsSettings,
    pub clients: ClientSettings,
    pub storage: StorageSettings,
    pub session: SessionSettings,
    pub gateway: GatewaySettings,
    pub telemetry: TelemetrySettings,
    pub rate_limit: RateLimitSettings,
    pub audit: AuditSettings,
    pub admin: AdminSettings,
    pub pages: super::PagesSettings,
    pub access: super::AccessSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSettings {
    pub enabled: bool,
    pub token: Masked,
    pub token_file: String,
    pub listen: String,
    /// Serve the admin listener over HTTPS (with `listen` set).
    pub enable_https: bool,
    /// Its own certificate chain and key; empty: the server's certificate.
    pub ssl_cert_file: String,
    pub ssl_key_file: String,
    /// How many days of each client's connection timeline are kept.
    pub timeline_days: i64,
    /// A client's last gateway call is written at most this often.
    pub timeline_gateway_interval_seconds: i64,
}

impl Default for AdminSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            token: Masked::default(),
            token_file: ".drawbridge_admin_token".into(),
            listen: String::new(),
            enable_https: false,
            ssl_cert_file: String::new(),
            ssl_key_file: String::new(),
            timeline_days: 7,
            timeline_gateway_interval_seconds: 60,
        }
    }
}

impl AdminSettings {
    /// How long a client's timeline keeps a step, in seconds.
    pub fn timeline_keep_seconds(&self) -> i64 {
        self.timeline_days.saturating_mul(86_400)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSettings {
    pub enabled: bool,
    pub registrations_per_minute: i64,
    /// Registrations one address may make at once; 0: as many as
    /// `registrations_per_minute`.
    pub registration_burst: i64,
    pub global_registrations_per_minute: i64,
    pub token_per_minute: i64,
    pub authorize_per_minute: i64,
    pub failed_auth_per_minute: i64,
    pub trusted_proxies: Vec<String>,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            registrations_per_minute: 60,
            registration_burst: 0,
            global_registrations_per_minute: 1200,
            token_per_minute: 600,
            authorize_per_minute: 300,
            failed_auth_per_minute: 10,
            trusted_proxies: vec![],
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    pub log_path: String,
    pub user_field: String,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            log_path: String::new(),
            user_field: "hashed".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    pub host: String,
    pub port: i64,
    pub base_url: String,
    pub workers: i64,
    pub max_body_bytes: i64,
    pub shutdown_timeout_seconds: i64,
    /// Each request's head must arrive within this long of the connection
    /// opening or of the previous answer.
    pub head_read_timeout_seconds: i64,
    /// A request's body must have arrived this long after its head (else 408).
    pub body_read_timeout_seconds: i64,
    /// Open connections one client address may hold at once (0: no cap).
    pub max_connections_per_address: i64,
    pub enable_https: bool,
    pub ssl_cert_file: String,
    pub ssl_key_file: String,
    /// Origins browser clients may call from (`*`: any; empty: no CORS).
    pub cors_allowed_origins: Vec<String>,
    /// `Strict-Transport-Security: max-age` on HTTPS answers (0: not sent).
    pub hsts_max_age_seconds: i64,
    /// With HTTPS: a plain-HTTP port that only redirects to HTTPS (and
    /// answers ACME HTTP-01 challenges); 0: none.
    pub http_redirect_port: i64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8002,
            base_url: String::new(),
            workers: 0,
            max_body_bytes: 64 * 1024,
            shutdown_timeout_seconds: 30,
            head_read_timeout_seconds: 10,
            body_read_timeout_seconds: 10,
            max_connections_per_address: 256,
            enable_https: false,
            ssl_cert_file: String::new(),
            ssl_key_file: String::new(),
            cors_allowed_origins: vec!["*".into()],
            hsts_max_age_seconds: 31_536_000,
            http_redirect_port: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    pub enabled: bool,
    pub realm: String,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            realm: "drawbridge".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamSettings {
    pub provider: String,
    pub issuer: String,
    pub auth_uri: String,
    pub token_uri: String,
    pub userinfo_uri: String,
    pub revocation_uri: String,
    pub jwks_uri: String,
    pub connect_timeout_ms: i64,
    pub timeout_ms: i64,
    pub revoke_upstream_on_revoke: bool,
    /// PEM roots trusted for the provider's endpoints, beside the web's.
    pub ca_file: String,
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        Self {
            provider: "dev".into(),
            issuer: String::new(),
            auth_uri: String::new(),
            token_uri: String::new(),
            userinfo_uri: String::new(),
            revocation_uri: String::new(),
            jwks_uri: String::new(),
            connect_timeout_ms: 3000,
            timeout_ms: 10000,
            revoke_upstream_on_revoke: false,
            ca_file: String::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GoogleSettings {
    pub credentials_file: String,
    pub client_id: String,
    pub client_secret: Masked,
    pub redirect_uri: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OAuthSettings {
    pub scopes: String,
    pub default_scopes: String,
    pub allowed_redirect_uris: Vec<String>,
    pub service_documentation: String,
    pub token_mode: String,
    pub access_token_minutes: i64,
    pub code_ttl_seconds: i64,
    pub transaction_ttl_minutes: i64,
    pub refresh_grace_seconds: i64,
    pub introspection_secret: Masked,
    pub allow_custom_upstream_clients: bool,
    pub allow_direct_upstream_credentials: bool,
    /// `[oauth.cimd]`: Client ID Metadata Documents.
    pub cimd: CimdSettings,
}

impl Default for OAuthSettings {
    fn default() -> Self {
        Self {
            scopes: "openid email profile".into(),
            default_scopes: String::new(),
            allowed_redirect_uris: vec![],
            service_documentation: String::new(),
            token_mode: "proxy".into(),
            access_token_minutes: 60,
            code_ttl_seconds: 300,
            transaction_ttl_minutes: 10,
            refresh_grace_seconds: 30,
            introspection_secret: Masked::default(),
            allow_custom_upstream_clients: false,
            allow_direct_upstream_credentials: false,
            cimd: CimdSettings::default(),
        }
    }
}

/// `[tls]`: certificates Drawbridge obtains itself.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSettings {
    pub acme: AcmeSettings,
}

/// `[tls.acme]`: automatic certificates (RFC 8555).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AcmeSettings {
    /// The names the certificate is for; empty: ACME off.
    pub domains: Vec<String>,
    pub directory_url: String,
    /// `mailto:` addresses the CA may write to about the account.
    pub contact: Vec<String>,
    /// PEM roots trusted for the ACME server's own HTTPS (a test CA).
    pub ca_file: String,
    /// First wait after a failed issuance, doubled up to an hour.
    pub retry_seconds: i64,
}

impl Default for AcmeSettings {
    fn default() -> Self {
        Self {
            domains: Vec::new(),
            directory_url: "https://acme-v02.api.letsencrypt.org/directory".into(),
            contact: Vec::new(),
            ca_file: String::new(),
            retry_seconds: 60,
        }
    }
}

/// `[oauth.cimd]`: clients that identify themselves with the URL of a
/// Client ID Metadata Document.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CimdSettings {
    pub enabled: bool,
    /// Hosts (`claude.ai`, `*.example.com`) or URL patterns
    /// (`https://vscode.dev/oauth/*`) whose documents are taken; empty: any
    /// public host.
    pub allowed: Vec<String>,
    /// Hosts or URL patterns never taken (before `allowed`).
    pub denied: Vec<String>,
    pub max_document_bytes: i64,
    pub connect_timeout_ms: i64,
    pub timeout_ms: i64,
    /// A document is kept at least this long, whatever its headers say.
    pub min_cache_seconds: i64,
    /// …and at most this long.
    pub max_cache_seconds: i64,
    /// Fetch documents from loopback and private addresses (tests only).
    pub allow_special_use_addresses: bool,
    /// PEM roots trusted for fetching documents, beside the web's roots.
    pub extra_ca_file: String,
}

impl Default for CimdSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            allowed: Vec::new(),
            denied: Vec::new(),
            max_document_bytes: 5 * 1024,
            connect_timeout_ms: 2000,
            timeout_ms: 5000,
            min_cache_seconds: 300,
            max_cache_seconds: 24 * 3600,
            allow_special_use_addresses: false,
            extra_ca_file: String::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClientSettings {
    pub expiry_hours: i64,
    pub unused_expiry_minutes: i64,
    pub cleanup_interval_minutes: i64,
    pub max_clients: i64,
    pub max_unused_per_address: i64,
    pub evict_unused_after_minutes: i64,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            expiry_hours: 24,
            unused_expiry_minutes: 60,
            cleanup_interval_minutes: 60,
            max_clients: 100,
            max_unused_per_address: 20,
            evict_unused_after_minutes: 5,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSettings {
    pub mode: String,
    pub credentials_dir: String,
    pub encryption_key_file: String,
    pub encryption_key: Masked,
    pub allow_insecure_key_permissions: bool,
    pub backup_interval_seconds: i64,
    pub durability: String,
    /// `sled` (a database in `credentials_dir`) or `postgres` (shared by
    /// several instances).
    pub backend: String,
    /// With `postgres`: `postgres://user:password@host:port/db?sslmode=…`.
    pub database_url: Masked,
    /// PEM roots trusted for the database's certificate (a private CA).
    pub database_ca_file: String,
    pub pool_size: i64,
    pub statement_timeout_ms: i64,
    /// Several instances on one database: how long the janitor's lease
    /// lasts unrenewed (another instance takes over within it).
    pub lease_seconds: i64,
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            mode: "FILE_ENCRYPTED".into(),
            credentials_dir: "./credentials".into(),
            encryption_key_file: ".auth_encryption_key".into(),
            encryption_key: Masked::default(),
            allow_insecure_key_permissions: false,
            backup_interval_seconds: 300,
            durability: "immediate".into(),
            backend: "sled".into(),
            database_url: Masked::default(),
            database_ca_file: String::new(),
            pool_size: 16,
            statement_timeout_ms: 5000,
            lease_seconds: 30,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSettings {
    pub timeout_minutes: i64,
    pub max_lifetime_hours: i64,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            timeout_minutes: 60,
            max_lifetime_hours: 24,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GatewaySettings {
    pub path: String,
    pub upstream_url: String,
    pub upstream_token_header: String,
    pub identity_headers: bool,
    pub required_scopes: String,
    pub connect_timeout_ms: i64,
    pub response_timeout_ms: i64,
    pub max_body_bytes: i64,
    /// `tools/list` answers keep only the tools the token may call.
    pub filter_tools_list: bool,
    /// Tool name (exact or glob) → scopes a `tools/call` of it needs.
    pub tool_scopes: BTreeMap<String, Vec<String>>,
    /// MCP method (`resources/read`, …) → scopes every call of it needs.
    pub method_scopes: BTreeMap<String, Vec<String>>,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            path: "/mcp".into(),
            upstream_url: String::new(),
            upstream_token_header: "Authorization".into(),
            identity_headers: true,
            required_scopes: String::new(),
            connect_timeout_ms: 3000,
            response_timeout_ms: 30000,
            max_body_bytes: 4 * 1024 * 1024,
            filter_tools_list: false,
            tool_scopes: BTreeMap::new(),
            method_scopes: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySettings {
    pub log_level: String,
    /// `auto` (human-readable on a terminal, JSON otherwise), `json` or `pretty`.
    pub log_format: String,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            log_level: "info".into(),
            log_format: "auto".into(),
        }
    }
}

/// A configured secret: serialised as itself (so it can be loaded), shown
/// as `***` by `Debug` and by [`Settings::masked`].
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Masked(pub String);

impl fmt::Debug for Masked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

impl Settings {
    /// A copy safe to print: every secret replaced by `***`.
    pub fn masked(&self) -> Settings {
        let mut copy = self.clone();
        if !copy.google.client_secret.0.is_empty() {
            copy.google.client_secret = Masked("***".into());
        }
        if !copy.oauth.introspection_secret.0.is_empty() {
            copy.oauth.introspection_secret = Masked("***".into());
        }
        if !copy.admin.token.0.is_empty() {
            copy.admin.token = Masked("***".into());
        }
        if !copy.storage.encryption_key.0.is_empty() {
            copy.storage.encryption_key = Masked("***".into());
        }
        // The URL stays readable (host, database, sslmode); its password
        // does not.
        copy.storage.database_url = Masked(crate::storage::postgres::masked_url(
            &copy.storage.database_url.0,
        ));
        copy
    }
}
