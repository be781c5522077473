//! The MCP gateway (`/mcp` by default): checks the Drawbridge access token,
//! then forwards the request to the upstream MCP server with the user's
//! current upstream (Google) access token instead — a client's token is
//! never forwarded, and clients never see Google's. Responses stream
//! through as they arrive (Server-Sent Events included).

use std::time::{Duration, Instant};

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;

use super::oauth::upstream_credentials;
use super::oauth::upstream_tokens::{ensure_fresh, Freshness};
use super::AppState;
use crate::actors::registry::InspectClient;
use crate::actors::token_broker::{IntrospectToken, TokenKind, TokenRecord};
use crate::domain::SecretToken;
use crate::metrics::METRICS;

/// Headers that belong to one connection, never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

pub fn configure(cfg: &mut web::ServiceConfig, path: &str, body_limit: usize) {
    for route in [path.to_owned(), format!("{path}/{{tail:.*}}")] {
        cfg.service(
            web::resource(route)
                .app_data(web::PayloadConfig::new(body_limit))
                .route(web::post().to(forward))
                .route(web::get().to(forward))
                .route(web::delete().to(forward))
                .default_service(web::to(super::method_not_allowed)),
        );
    }
}

fn challenge(state: &AppState, error: Option<(&str, &str)>, scope: &str) -> HttpResponse {
    let config = &state.config;
    let metadata = config.public_url(&format!(
        "/.well-known/oauth-protected-resource{}",
        config.settings.gateway.path
    ));
    let mut value = format!("Bearer resource_metadata=\"{metadata}\", scope=\"{scope}\"");
    let status = match error {
        Some(("insufficient_scope", description)) => {
            value.push_str(&format!(
                ", error=\"insufficient_scope\", error_description=\"{description}\""
            ));
            StatusCode::FORBIDDEN
        }
        Some((code, description)) => {
            value.push_str(&format!(
                ", error=\"{code}\", error_description=\"{description}\""
            ));
            StatusCode::UNAUTHORIZED
        }
        None => StatusCode::UNAUTHORIZED,
    };
    let code = error.map_or("invalid_token", |(c, _)| c);
    let description = error.map_or("an access token is required", |(_, d)| d);
    HttpResponse::build(status)
        .insert_header((header::WWW_AUTHENTICATE, value))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({"error": code, "error_description": description}))
}

fn outcome(label: &str, started: Instant) {
    METRICS.gateway_requests.with_label_values(&[label]).inc();
    METRICS
        .gateway_duration
        .with_label_values(&[label])
        .observe(started.elapsed().as_secs_f64());
}

/// The token's record when it may reach this resource.
async fn authorize(state: &AppState, req: &HttpRequest) -> Result<TokenRecord, HttpResponse> {
    let scope = state.config.default_scopes.to_string();
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned());
    let Some(token) = token else {
        return Err(challenge(state, None, &scope));
    };
    let msg = IntrospectToken {
        token: SecretToken::presented(token),
        now: state.clock.now(),
    };
    let record = match state.broker.read(msg).await {
        Ok(Ok(r)) => r,
        _ => {
            return Err(HttpResponse::ServiceUnavailable()
                .json(serde_json::json!({"error": "temporarily_unavailable"})))
        }
    };
    let invalid = |d| challenge(state, Some(("invalid_token", d)), &scope);
    let Some(record) = record.filter(|r| r.kind == TokenKind::Access) else {
        return Err(invalid("the access token is unknown, expired or revoked"));
    };
    if record
        .resource
        .as_deref()
        .is_some_and(|r| r != state.config.resource())
    {
        return Err(invalid("the access token is for another resource"));
    }
    let needed = state.config.gateway_scopes.tokens();
    if let Some(missing) = needed.iter().find(|s| !record.scopes.contains(s)) {
        let _ = missing;
        return Err(challenge(
            state,
            Some((
                "insufficient_scope",
                "the access token lacks a required scope",
            )),
            &needed.join(" "),
        ));
    }
    Ok(record)
}

/// Answers up to this size with a known length are relayed whole.
const BUFFER_UP_TO: u64 = 256 * 1024;

async fn forward(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let started = Instant::now();
    let record = match authorize(&state, &req).await {
        Ok(r) => r,
        Err(res) => {
            outcome(
                if res.status() == StatusCode::FORBIDDEN {
                    "insufficient_scope"
                } else {
                    "unauthorized"
                },
                started,
            );
            return res;
        }
    };
    let upstream_url = &state.config.settings.gateway.upstream_url;
    if upstream_url.is_empty() {
        outcome("not_configured", started);
        return HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"error": "temporarily_unavailable", "error_description": "no upstream MCP server is configured (GATEWAY_UPSTREAM_URL)"}));
    }
    let user = match upstream_token(&state, &record).await {
        Ok(t) => t,
        Err(res) => {
            outcome("upstream_token", started);
            return res;
        }
    };
    let tail = req.match_info().get("tail").unwrap_or("");
    let mut url = format!(
        "{}{}{}",
        upstream_url.trim_end_matches('/'),
        if tail.is_empty() { "" } else { "/" },
        tail
    );
    if !req.query_string().is_empty() {
        url.push('?');
        url.push_str(req.query_string());
    }
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes())
        .unwrap_or(reqwest::Method::POST);
    let mut upstream = state.gateway_http.request(method, &url);
    for (name, value) in req.headers() {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n) || n == "authorization" || n.starts_with("x-drawbridge-") {
            continue;
        }
        upstream = upstream.header(n, value.as_bytes());
    }
    let g = &state.config.settings.gateway;
    upstream = if g
        .upstream_token_header
        .eq_ignore_ascii_case("authorization")
    {
        upstream.header(
            "authorization",
            format!("Bearer {}", user.tokens.access_token),
        )
    } else {
        upstream.header(
            g.upstream_token_header.as_str(),
            user.tokens.access_token.clone(),
        )
    };
    if g.identity_headers {
        upstream = upstream
            .header(
                "x-drawbridge-user",
                user.verified_email().unwrap_or(&user.sub).to_owned(),
            )
            .header("x-drawbridge-client", record.client_id.clone());
    }
    let timeout = Duration::from_millis(g.response_timeout_ms as u64);
    let response = match tokio::time::timeout(timeout, upstream.body(body).send()).await {
        Err(_) => {
            outcome("timeout", started);
            return HttpResponse::GatewayTimeout().json(serde_json::json!({"error": "upstream_timeout", "error_description": "the MCP server did not answer in time"}));
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "MCP upstream unreachable");
            outcome("unreachable", started);
            return HttpResponse::BadGateway().json(serde_json::json!({"error": "bad_gateway", "error_description": "the MCP server is unreachable"}));
        }
        Ok(Ok(r)) => r,
    };
    outcome("forwarded", started);
    let mut res = HttpResponse::build(
        StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
    );
    for (name, value) in response.headers() {
        if HOP_BY_HOP.contains(&name.as_str()) {
            continue;
        }
        res.append_header((name.as_str(), value.as_bytes()));
    }
    let event_stream = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if event_stream {
        // Never let a proxy buffer an event stream.
        res.insert_header(("x-accel-buffering", "no"));
    } else if response.content_length().is_some_and(|n| n <= BUFFER_UP_TO) {
        // A small answer of known size (most JSON-RPC replies): pass it on
        // whole, which is cheaper than relaying it chunk by chunk.
        return match response.bytes().await {
            Ok(body) => res.body(body),
            Err(e) => {
                tracing::warn!(error = %e, "MCP upstream answer cut off");
                HttpResponse::BadGateway().json(serde_json::json!({"error": "bad_gateway", "error_description": "the MCP server's answer was cut off"}))
            }
        };
    }
    res.streaming(
        response
            .bytes_stream()
            .map(|chunk| chunk.map_err(actix_web::error::ErrorBadGateway)),
    )
}

/// The user's credentials, their upstream access token refreshed first when near expiry.
async fn upstream_token(
    state: &AppState,
    record: &TokenRecord,
) -> Result<crate::actors::vault::UserCredentials, HttpResponse> {
    let scope = state.config.default_scopes.to_string();
    let client = match state
        .registry
        .read(InspectClient {
            client_id: record.client_id.clone(),
        })
        .await
    {
        Ok(Ok(Some(c))) => c,
        _ => {
            return Err(challenge(
                state,
                Some(("invalid_token", "the client is no longer registered")),
                &scope,
            ))
        }
    };
    let creds = upstream_credentials(state, None, &client)
        .await
        .map_err(|e| e.into_response())?;
    match ensure_fresh(state, &record.user, &creds).await {
        Ok(user) => Ok(user),
        Err(Freshness::Revoked) => Err(challenge(
            state,
            Some((
                "invalid_token",
                "access was withdrawn at the identity provider; sign in again",
            )),
            &scope,
        )),
        Err(Freshness::Unavailable) => Err(HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"error": "temporarily_unavailable"}))),
    }
}
