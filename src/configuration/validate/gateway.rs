//! `[auth]` and `[gateway]`: the protected MCP endpoint in front of the
//! real MCP server.

use super::rules::{absolute_url, err, ranged};
use crate::configuration::{ConfigError, Settings};
use crate::domain::{Glob, ScopeSet};
use crate::mcp::ToolScopes;

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

/// Most rules in `gateway.tool_scopes` and `gateway.method_scopes` together
/// (each MCP request is checked against every one).
const MAX_RULES: usize = 1000;

/// `gateway.tool_scopes` and `gateway.method_scopes`: scopes per tool
/// (exact name or glob) and per MCP method. Every scope must be one this
/// server offers (`oauth.scopes`): a token can never hold another, so a
/// rule needing it would refuse every call.
pub(super) fn tool_scopes(
    s: &Settings,
    supported: &ScopeSet,
    google_aliases: bool,
) -> Result<ToolScopes, ConfigError> {
    let g = &s.gateway;
    if g.tool_scopes.len() + g.method_scopes.len() > MAX_RULES {
        return Err(err(
            "gateway.tool_scopes",
            format!("at most {MAX_RULES} rules (tools and methods together)"),
        ));
    }
    let rules = |key: &str, table: &std::collections::BTreeMap<String, Vec<String>>| {
        let mut out = Vec::new();
        for (name, scopes) in table {
            let label = format!("{key}.\"{name}\"");
            if name.is_empty()
                || name.chars().count() > 128
                || name.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(err(
                    key,
                    format!("`{name}` is not a name or pattern (1 to 128 characters, no spaces)"),
                ));
            }
            let scopes = ScopeSet::parse(&scopes.join(" "), google_aliases)
                .and_then(|set| set.ensure_within(supported).map(|_| set))
                .map_err(|e| err(&label, format!("{e} (oauth.scopes lists what is offered)")))?;
            out.push((name.clone(), scopes.tokens().to_vec()));
        }
        Ok(out)
    };
    let tools = rules("gateway.tool_scopes", &g.tool_scopes)?;
    let methods = rules("gateway.method_scopes", &g.method_scopes)?;
    Ok(ToolScopes {
        tools: tools.into_iter().map(|(p, s)| (Glob::new(p), s)).collect(),
        methods,
    })
}
