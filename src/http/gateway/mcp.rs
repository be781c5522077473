//! The gateway's MCP policy (`gateway.tool_scopes`, `gateway.method_scopes`):
//! a POST body is read as JSON-RPC (single or batched, checked against the
//! `Mcp-Method`/`Mcp-Name` headers), every call's scopes are put together,
//! and a token that lacks any of them is refused before the MCP server is
//! contacted. Each call is then recorded: one `mcp_request` audit event and
//! one count of `drawbridge_mcp_requests_total` per JSON-RPC call (a batch
//! of three is three events sharing the outcome), never arguments or
//! results (`mcp_name` is the tool, prompt or resource URI: bunyan's own
//! `name` is the service's). The events stand outside the request's span:
//! copying its fields into every event cost measurable throughput, and
//! `ip` is recorded directly. Without a table none of this runs: bodies
//! pass unread.

use std::collections::BTreeSet;
use std::sync::LazyLock;
use std::time::Instant;

use actix_web::HttpRequest;
use prometheus::{IntCounterVec, Opts};

use super::Refusal;
use crate::configuration::Config;
use crate::http::AppState;
use crate::mcp::{self, Message, ToolScopes};
use crate::metrics::METRICS;
use crate::service::session::Access;

/// `drawbridge_mcp_requests_total{method, outcome, tool}`, registered with
/// the process's metrics on first use.
static MCP_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let c = IntCounterVec::new(
        Opts::new(
            "drawbridge_mcp_requests_total",
            "MCP JSON-RPC calls at the gateway (with gateway.tool_scopes set), by method (known MCP methods, `notification`, else `other`), outcome (allowed, refused_scope, bad_request, upstream_4xx, upstream_5xx, upstream_error) and tool (names of exact gateway.tool_scopes entries, else `other`)",
        ),
        &["method", "outcome", "tool"],
    )
    .expect("valid metric");
    METRICS
        .registry
        .register(Box::new(c.clone()))
        .expect("unique metric");
    c
});

/// Methods that get a label of their own; the rest count as `other`.
const METHODS: &[&str] = &[
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "prompts/list",
    "prompts/get",
];

/// Starts the MCP metrics at zero for the outcomes dashboards show, so
/// their series exist before the first call (only when a table is set).
pub(super) fn start_metrics(config: &Config) {
    if config.gateway.tool_scopes.is_empty() {
        return;
    }
    for method in ["tools/call", "tools/list", "initialize"] {
        for outcome in ["allowed", "refused_scope", "bad_request"] {
            MCP_REQUESTS.with_label_values(&[method, outcome, "other"]);
        }
    }
}

/// An MCP request the gateway read: who sends it and what it calls.
pub(super) struct McpRequest {
    /// The calls of the body (requests and notifications; a client's
    /// responses to the server are not calls).
    calls: Vec<Message>,
    /// The scopes the token holds.
    pub granted: Vec<String>,
    pub client_id: String,
    /// The user's vault id, and their email once known.
    uid: String,
    pub user: Option<String>,
    /// Whether the body asks for `tools/list` (its answer may be filtered).
    pub lists_tools: bool,
    /// The client's address (as `server.trusted_proxies` allow).
    ip: String,
    /// The malformed-body refusal, when there was one.
    malformed: bool,
}

/// Reads a POST body as MCP JSON-RPC and applies the scope table; `Ok(None)`
/// when no table is configured or the request is not a POST. On a refusal,
/// `seen` keeps what was read, for the audit record.
pub(super) fn check(
    config: &Config,
    req: &HttpRequest,
    access: &Access,
    body: &[u8],
    seen: &mut Option<McpRequest>,
) -> Result<(), Refusal> {
    let table: &ToolScopes = &config.gateway.tool_scopes;
    if table.is_empty() || req.method() != actix_web::http::Method::POST {
        return Ok(());
    }
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let read = mcp::read(body, header("mcp-method"), header("mcp-name"));
    let mut request = McpRequest {
        calls: Vec::new(),
        granted: access.record.scopes.clone(),
        client_id: access.record.client_id.to_string(),
        uid: access.record.user.clone(),
        user: None,
        lists_tools: false,
        ip: crate::http::client_ip(req),
        malformed: false,
    };
    let messages = match read {
        Ok(messages) => messages,
        Err(e) => {
            request.malformed = true;
            *seen = Some(request);
            return Err(Refusal::Malformed(e));
        }
    };
    request.calls = messages
        .into_iter()
        .filter(|m| matches!(m, Message::Call { .. }))
        .collect();
    request.lists_tools = request
        .calls
        .iter()
        .any(|m| m.method() == Some("tools/list"));
    let mut needed = BTreeSet::new();
    for call in &request.calls {
        needed.extend(table.required(call));
    }
    let lacking = !mcp::missing(&needed, &request.granted).is_empty();
    *seen = Some(request);
    if lacking {
        // RFC 6750 §3.1: the scope "necessary to access the resource", so
        // every scope the operation needs, including those already held:
        // the client asks for exactly this set again.
        let scope = needed.into_iter().collect::<Vec<_>>().join(" ");
        return Err(Refusal::Scope(scope));
    }
    Ok(())
}

impl McpRequest {
    /// Looks up the user's email for the audit record, when the forwarded
    /// path did not already learn it.
    pub(super) async fn learn_user(&mut self, state: &AppState) {
        if self.user.is_some() {
            return;
        }
        self.user = crate::service::session::user_label(state, &self.uid).await;
    }

    /// Writes the audit events and counts the calls, with `outcome`
    /// (`allowed`, `refused_scope`, `upstream_…`) and the HTTP status
    /// answered.
    pub(super) fn record(&self, config: &Config, outcome: &str, status: u16, started: Instant) {
        let outcome = if self.malformed {
            "bad_request"
        } else {
            outcome
        };
        let duration_ms = started.elapsed().as_millis() as u64;
        let user = crate::audit::shown_user(self.user.as_deref());
        let client_id = self.client_id.as_str();
        let ip = self.ip.as_str();
        let batch = self.calls.len();
        let success = outcome == "allowed";
        if self.malformed {
            MCP_REQUESTS
                .with_label_values(&["other", outcome, "other"])
                .inc();
            tracing::warn!(
                target: "audit", parent: None, event_type = "mcp_request", client_id, ip, user, outcome, status,
                duration_ms, success, "MCP request refused: the body is not valid JSON-RPC"
            );
            return;
        }
        for call in &self.calls {
            let method = call.method().unwrap_or_default();
            let name = call.name();
            let tool = match name {
                Some(n) if method == "tools/call" && config.gateway.tool_scopes.is_exact(n) => n,
                _ => "other",
            };
            MCP_REQUESTS
                .with_label_values(&[method_label(method), outcome, tool])
                .inc();
            tracing::info!(
                target: "audit", parent: None, event_type = "mcp_request", client_id, ip, user, method, mcp_name = name,
                outcome, status, duration_ms, batch, success,
                "MCP {method} {outcome}"
            );
        }
    }
}

/// The `method` label: a known method, `notification`, else `other`.
fn method_label(method: &str) -> &'static str {
    if method.starts_with("notifications/") {
        return "notification";
    }
    METHODS
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("other")
}

/// The `outcome` of a call the MCP server answered with `status`.
pub(super) fn answered(status: u16) -> &'static str {
    match status {
        ..=399 => "allowed",
        400..=499 => "upstream_4xx",
        _ => "upstream_5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_stay_within_a_fixed_set() {
        assert_eq!(method_label("tools/call"), "tools/call");
        assert_eq!(method_label("notifications/initialized"), "notification");
        assert_eq!(method_label("logging/setLevel"), "other");
        assert_eq!(method_label("tools/call-anything-else"), "other");
        assert_eq!(answered(200), "allowed");
        assert_eq!(answered(202), "allowed");
        assert_eq!(answered(404), "upstream_4xx");
        assert_eq!(answered(503), "upstream_5xx");
    }
}
