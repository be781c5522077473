//! `[oauth]` and `[session]`: the scopes offered, the token mode and every
//! lifetime.

use std::time::Duration;

use super::rules::{absolute_url, err, pem_roots, ranged};
use crate::cimd::{FetchPolicy, Lifetimes, UrlPattern, UrlPolicy};
use crate::configuration::{CimdConfig, CimdSettings, ConfigError, Settings, TokensConfig};
use crate::domain::ScopeSet;

/// The scopes clients may ask for.
pub(super) struct Scopes {
    pub supported: ScopeSet,
    /// Google's short scope names expand (the `google` provider).
    pub google_aliases: bool,
}

/// `oauth.scopes` (and the documentation URL advertised beside them).
pub(super) fn scopes(s: &Settings, google_aliases: bool) -> Result<Scopes, ConfigError> {
    let supported = ScopeSet::parse(&s.oauth.scopes, google_aliases)
        .map_err(|e| err("oauth.scopes", e.to_string()))?;
    if supported.is_empty() {
        return Err(err("oauth.scopes", "must list at least one scope"));
    }
    if !s.oauth.service_documentation.is_empty() {
        absolute_url(
            "oauth.service_documentation",
            &s.oauth.service_documentation,
        )?;
    }
    Ok(Scopes {
        supported,
        google_aliases,
    })
}

/// `[session]`, the default scopes, the token mode and the lifetimes.
pub(super) fn tokens(s: &Settings, scopes: &Scopes) -> Result<TokensConfig, ConfigError> {
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
        scopes.supported.clone()
    } else {
        let d = ScopeSet::parse(&s.oauth.default_scopes, scopes.google_aliases)
            .map_err(|e| err("oauth.default_scopes", e.to_string()))?;
        d.ensure_within(&scopes.supported)
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
    Ok(TokensConfig {
        default_scopes,
        passthrough,
        access_ttl: access * 60,
        code_ttl,
        transaction_ttl: txn * 60,
        refresh_grace: grace,
        refresh_idle: s.session.timeout_minutes * 60,
        grant_lifetime: s.session.max_lifetime_hours * 3600,
    })
}

/// `[oauth.cimd]`: the URL lists, the fetch bounds and the cache bounds.
pub(super) fn cimd(c: &CimdSettings) -> Result<CimdConfig, ConfigError> {
    let patterns = |key: &str, list: &[String]| -> Result<Vec<UrlPattern>, ConfigError> {
        list.iter()
            .map(|raw| UrlPattern::parse(raw).map_err(|problem| err(key, problem)))
            .collect()
    };
    let policy = UrlPolicy {
        enabled: c.enabled,
        allowed: patterns("oauth.cimd.allowed", &c.allowed)?,
        denied: patterns("oauth.cimd.denied", &c.denied)?,
    };
    let max_bytes = ranged(
        "oauth.cimd.max_document_bytes",
        c.max_document_bytes,
        512,
        256 * 1024,
    )?;
    let connect = ranged(
        "oauth.cimd.connect_timeout_ms",
        c.connect_timeout_ms,
        100,
        30_000,
    )?;
    let total = ranged("oauth.cimd.timeout_ms", c.timeout_ms, 100, 60_000)?;
    let min_seconds = ranged(
        "oauth.cimd.min_cache_seconds",
        c.min_cache_seconds,
        0,
        7 * 24 * 3600,
    )? as i64;
    let max_seconds = ranged(
        "oauth.cimd.max_cache_seconds",
        c.max_cache_seconds,
        0,
        30 * 24 * 3600,
    )? as i64;
    if max_seconds < min_seconds {
        return Err(err(
            "oauth.cimd.max_cache_seconds",
            "must not be below oauth.cimd.min_cache_seconds",
        ));
    }
    let extra_roots_pem = pem_roots("oauth.cimd.extra_ca_file", &c.extra_ca_file)?
        .into_iter()
        .collect();
    Ok(CimdConfig {
        policy,
        fetch: FetchPolicy {
            max_bytes: max_bytes as usize,
            connect_timeout: Duration::from_millis(connect),
            total_timeout: Duration::from_millis(total),
            allow_special_use_addresses: c.allow_special_use_addresses,
            extra_roots_pem,
        },
        lifetimes: Lifetimes {
            min_seconds,
            max_seconds,
        },
    })
}
