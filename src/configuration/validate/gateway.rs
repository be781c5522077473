//! `[auth]` and `[gateway]`: the protected MCP endpoint in front of the
//! real MCP server.

use super::rules::{absolute_url, err, ranged};
use crate::configuration::{ConfigError, Settings};
use crate::domain::ScopeSet;

/// `auth.enabled`: the gateway always checks tokens, since an open gateway
/// would hand any caller the users' Google tokens. `false` is refused, not
/// ignored.
pub(super) fn auth(s: &Settings) -> Result<(), ConfigError> {
    if !s.auth.enabled {
        return Err(err(
            "auth.enabled",
            "false is not supported: the MCP gateway always requires a Drawbridge token (it forwards users' Google tokens); to serve the MCP server without authentication, point clients at it directly instead of at Drawbridge",
        ));
    }
    Ok(())
}

/// The `[gateway]` section; returns the scopes a token needs there.
pub(super) fn validate(s: &Settings, google_aliases: bool) -> Result<ScopeSet, ConfigError> {
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
    ScopeSet::parse(&g.required_scopes, google_aliases)
        .map_err(|e| err("gateway.required_scopes", e.to_string()))
}
