//! Environment variables that override `config.toml`.

/// The conventional variable names (`MCP_HOST`, `BASE_URL`, `GOOGLE_*`, …)
/// and Drawbridge's own fixed names, with the `section.key` each one sets.
pub const NAMED: &[(&str, &str)] = &[
    ("MCP_HOST", "server.host"),
    ("MCP_PORT", "server.port"),
    ("BASE_URL", "server.base_url"),
    ("ENABLE_HTTPS", "server.enable_https"),
    ("SSL_CERT_FILE", "server.ssl_cert_file"),
    ("SSL_KEY_FILE", "server.ssl_key_file"),
    ("MCP_AUTH_ENABLED", "auth.enabled"),
    ("MCP_AUTH_REALM", "auth.realm"),
    ("UPSTREAM_PROVIDER", "upstream.provider"),
    ("GOOGLE_OAUTH_CREDENTIALS_FILE", "google.credentials_file"),
    ("GOOGLE_CLIENT_ID", "google.client_id"),
    ("GOOGLE_CLIENT_SECRET", "google.client_secret"),
    ("GOOGLE_REDIRECT_URI", "google.redirect_uri"),
    ("GOOGLE_OAUTH_SCOPES", "oauth.scopes"),
    ("PROXY_CLIENT_EXPIRY_HOURS", "clients.expiry_hours"),
    (
        "PROXY_CLEANUP_INTERVAL_MINUTES",
        "clients.cleanup_interval_minutes",
    ),
    ("MAX_PROXY_CLIENTS", "clients.max_clients"),
    ("CREDENTIAL_STORAGE_MODE", "storage.mode"),
    ("CREDENTIALS_DIR", "storage.credentials_dir"),
    ("AUTH_ENCRYPTION_KEY_FILE", "storage.encryption_key_file"),
    ("AUTH_ENCRYPTION_KEY", "storage.encryption_key"),
    ("DATABASE_URL", "storage.database_url"),
    ("SESSION_TIMEOUT_MINUTES", "session.timeout_minutes"),
    ("MAX_SESSION_LIFETIME_HOURS", "session.max_lifetime_hours"),
    ("GATEWAY_PATH", "gateway.path"),
    ("GATEWAY_UPSTREAM_URL", "gateway.upstream_url"),
    ("TOKEN_MODE", "oauth.token_mode"),
    (
        "MAX_REGISTRATIONS_PER_MINUTE",
        "rate_limit.registrations_per_minute",
    ),
    ("RATE_LIMIT_ENABLED", "rate_limit.enabled"),
    ("DRAWBRIDGE_ADMIN_TOKEN", "admin.token"),
    ("LOG_LEVEL", "telemetry.log_level"),
    ("LOG_FORMAT", "telemetry.log_format"),
];

/// Prefix of the generic form `DRAWBRIDGE_<SECTION>__<KEY>`.
pub const GENERIC_PREFIX: &str = "DRAWBRIDGE_";

/// `DRAWBRIDGE_*` names that are not configuration keys.
pub const RESERVED: &[&str] = &["DRAWBRIDGE_CONFIG"];

/// The key a generic variable names (`["section", "key"]`, or deeper with
/// more `__`: `DRAWBRIDGE_OAUTH__CIMD__ENABLED` is `oauth.cimd.enabled`),
/// lower-cased, or `None` when the name does not have that shape.
pub fn generic_target(name: &str) -> Option<Vec<String>> {
    let rest = name.strip_prefix(GENERIC_PREFIX)?;
    let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
    (path.len() >= 2 && path.iter().all(|p| !p.is_empty())).then_some(path)
}
