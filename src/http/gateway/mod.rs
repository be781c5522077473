//! The MCP gateway (`/mcp` by default): checks the Drawbridge access token,
//! then forwards the request to the upstream MCP server with the user's
//! current upstream (Google) access token instead — a client's token is
//! never forwarded, and clients never see Google's. Responses stream
//! through as they arrive (Server-Sent Events included).
//!
//! - [`paths`]: where a request goes, refused when it could leave the
//!   upstream path;
//! - [`headers`]: which headers pass, and those the gateway sets;
//! - [`forward`]: sending the request and relaying the answer;
//! - [`challenge`]: the `WWW-Authenticate` answers;
//! - [`mcp`]: the scopes per tool and method (`gateway.tool_scopes`), and
//!   the audit record and metric of each MCP call;
//! - [`tools_list`]: `tools/list` answers keep the tools the token may call.
//!
//! The token and the user's upstream session come from
//! [`crate::service::session`].

mod challenge;
mod forward;
mod headers;
mod mcp;
mod paths;
mod tools_list;

use std::time::Instant;

use actix_web::http::{header, Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use url::Url;

use self::paths::{escapes_upstream_path, raw_tail, target_url};
use super::cors::CorsPolicy;
use super::errors::OAuthError;
use super::AppState;
use crate::configuration::Config;
use crate::domain::ErrorCode;
use crate::metrics::METRICS;
use crate::service::session::{self, AccessRefusal, SessionRefusal};

pub fn configure(cfg: &mut web::ServiceConfig, config: &Config, cors: &CorsPolicy) {
    let (path, body_limit) = (config.gateway.path.as_str(), config.gateway.max_body_bytes);
    mcp::start_metrics(config);
    for route in [path.to_owned(), format!("{path}/{{tail:.*}}")] {
        cfg.service(
            web::resource(route)
                .app_data(web::PayloadConfig::new(body_limit))
                .route(web::post().to(handle))
                .route(web::get().to(handle))
                .route(web::delete().to(handle))
                .default_service(super::allow("GET, POST, DELETE"))
                .wrap(cors.middleware(&[Method::GET, Method::POST, Method::DELETE])),
        );
    }
}

async fn handle(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let started = Instant::now();
    let mut seen = None;
    let config = &state.config;
    match pass(&state, &req, payload, &mut seen).await {
        Ok(answer) => {
            outcome("forwarded", started);
            let status = answer.status().as_u16();
            let filter = seen
                .as_ref()
                .filter(|m| m.lists_tools && config.gateway.filter_tools_list);
            let filter = filter.map(|m| forward::ListFilter {
                table: config.gateway.tool_scopes.clone(),
                granted: m.granted.clone(),
            });
            if let Some(m) = &seen {
                m.record(config, mcp::answered(status), status, started);
            }
            forward::relay(answer, filter).await
        }
        Err(refusal) => {
            outcome(refusal.label(), started);
            let mcp_outcome = refusal.mcp_outcome();
            let response = refusal.response(config);
            if let Some(mut m) = seen {
                m.learn_user(&state).await;
                m.record(config, mcp_outcome, response.status().as_u16(), started);
            }
            response
        }
    }
}

/// Checks the request and the token, then forwards it; answers the MCP
/// server's answer. The order of the checks decides which refusal a
/// request with several faults gets: no token is looked up for a path that
/// could escape, and no upstream token is refreshed for a request that
/// cannot be forwarded.
async fn pass(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
    seen: &mut Option<mcp::McpRequest>,
) -> Result<reqwest::Response, Refusal> {
    let g = &state.config.gateway;
    // WebSocket (or any) upgrades are not relayed: MCP runs over plain HTTP
    // (Streamable HTTP), and actix would read the rest of the connection as
    // this request's body.
    if req.headers().contains_key(header::UPGRADE) {
        return Err(Refusal::Upgrade);
    }
    let tail = raw_tail(req.uri().path(), &g.path);
    if escapes_upstream_path(tail) {
        return Err(Refusal::EscapesPath);
    }
    let access = session::check_access(state, super::bearer(req)).await;
    let access = access.map_err(Refusal::Access)?;
    if g.upstream_url.is_empty() {
        return Err(Refusal::NotConfigured);
    }
    let upstream = Url::parse(&g.upstream_url).ok();
    let url = upstream.and_then(|u| target_url(&u, tail, req.query_string()));
    let url = url.ok_or(Refusal::OutsideUpstream)?;
    let limit = g.max_body_bytes;
    if declared_length(req).is_some_and(|n| n > limit as u64) {
        return Err(Refusal::TooLarge(limit));
    }
    let body = forward::read_body(payload, limit).await?;
    mcp::check(&state.config, req, &access, &body, seen).inspect_err(|refusal| {
        if let Refusal::Scope(needed) = refusal {
            let why = format!("a tool or method needs scopes the token lacks: {needed}");
            let client_id = &access.record.client_id;
            crate::service::timeline::gateway_refused(state, client_id, "insufficient_scope", &why);
        }
    })?;
    let ip = crate::http::client_ip(req);
    let user = session::upstream_session(state, &access, &ip).await;
    let user = user.map_err(Refusal::Session)?;
    if let Some(m) = seen {
        m.user = Some(user.user.clone());
    }
    forward::send(state, req, url, &user, body).await
}

/// The request's `Content-Length`, when it declares one.
fn declared_length(req: &HttpRequest) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Why a gateway request was not forwarded (or its answer not relayed).
enum Refusal {
    /// A protocol upgrade (WebSocket) was asked for.
    Upgrade,
    /// The path has dot segments, backslashes or control characters.
    EscapesPath,
    /// The token may not pass.
    Access(AccessRefusal),
    /// No MCP server is configured.
    NotConfigured,
    /// The forwarded URL would leave the MCP server's path.
    OutsideUpstream,
    /// The body is larger than the limit (in bytes).
    TooLarge(usize),
    /// The user's upstream token cannot be had.
    Session(SessionRefusal),
    /// The body could not be read.
    BodyUnreadable,
    /// The MCP server did not answer in time.
    Timeout,
    /// The MCP server could not be reached.
    Unreachable,
    /// The MCP server refused the user's upstream token.
    UpstreamUnauthorized,
    /// The body is not MCP JSON-RPC, or disagrees with its headers.
    Malformed(crate::mcp::JsonRpcError),
    /// The token lacks a scope the MCP calls need; all they need.
    Scope(String),
}

impl Refusal {
    /// The `outcome` label of the gateway's metrics.
    fn label(&self) -> &'static str {
        match self {
            Self::Access(AccessRefusal::InsufficientScope) => "insufficient_scope",
            Self::Access(_) => "unauthorized",
            Self::Scope(_) => "insufficient_scope",
            Self::Malformed(_) => "refused",
            Self::NotConfigured => "not_configured",
            Self::Session(_) => "upstream_token",
            Self::Timeout => "timeout",
            Self::Unreachable => "unreachable",
            Self::UpstreamUnauthorized => "upstream_unauthorized",
            Self::Upgrade
            | Self::EscapesPath
            | Self::OutsideUpstream
            | Self::TooLarge(_)
            | Self::BodyUnreadable => "refused",
        }
    }

    /// The outcome of the MCP calls of a request refused this way.
    fn mcp_outcome(&self) -> &'static str {
        match self {
            Self::Scope(_) => "refused_scope",
            Self::Malformed(_) => "bad_request",
            _ => "upstream_error",
        }
    }

    fn response(self, config: &Config) -> HttpResponse {
        let invalid = |status, description: String| {
            OAuthError::new(status, ErrorCode::InvalidRequest, description).into_response()
        };
        match self {
            Self::Upgrade => invalid(StatusCode::BAD_REQUEST, "protocol upgrades (e.g. WebSocket) are not supported here; MCP uses Streamable HTTP".into()),
            Self::EscapesPath => invalid(StatusCode::BAD_REQUEST, "the path has dot segments, backslashes or control characters".into()),
            Self::OutsideUpstream => invalid(StatusCode::BAD_REQUEST, "the path does not stay under the MCP server's path".into()),
            Self::TooLarge(limit) => invalid(StatusCode::PAYLOAD_TOO_LARGE, format!("the request body is larger than {limit} bytes")),
            Self::BodyUnreadable => invalid(StatusCode::BAD_REQUEST, "the request body could not be read".into()),
            Self::Access(refusal) => challenge::access_refused(config, refusal),
            Self::Scope(needed) => challenge::insufficient_scope(config, &needed),
            Self::Malformed(e) => challenge::malformed(e),
            Self::Session(refusal) => challenge::session_refused(config, refusal),
            Self::UpstreamUnauthorized => challenge::invalid_token(config, "the MCP server refused the user's upstream credentials; sign in again"),
            Self::NotConfigured => HttpResponse::ServiceUnavailable().json(serde_json::json!({"error": "temporarily_unavailable", "error_description": "no upstream MCP server is configured (GATEWAY_UPSTREAM_URL)"})),
            Self::Timeout => HttpResponse::GatewayTimeout().json(serde_json::json!({"error": "upstream_timeout", "error_description": "the MCP server did not answer in time"})),
            Self::Unreachable => HttpResponse::BadGateway().json(serde_json::json!({"error": "bad_gateway", "error_description": "the MCP server is unreachable"})),
        }
    }
}

/// Counts a gateway request and its duration by outcome.
fn outcome(label: &str, started: Instant) {
    METRICS.gateway_requests.with_label_values(&[label]).inc();
    METRICS
        .gateway_duration
        .with_label_values(&[label])
        .observe(started.elapsed().as_secs_f64());
}
