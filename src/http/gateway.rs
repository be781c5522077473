//! The MCP gateway (`/mcp` by default): checks the Drawbridge access token,
//! then forwards the request to the upstream MCP server with the user's
//! current upstream (Google) access token instead — a client's token is
//! never forwarded, and clients never see Google's. Responses stream
//! through as they arrive (Server-Sent Events included).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use url::Url;

use super::client_addr::forwarded_chain;
use super::errors::OAuthError;
use super::oauth::upstream_credentials;
use super::AppState;
use crate::actors::registry::{ClientView, GetClient};
use crate::actors::token_broker::{IntrospectToken, TokenKind, TokenRecord};
use crate::domain::ErrorCode;
use crate::metrics::METRICS;
use crate::service::session::{ensure_fresh, Freshness};

/// Headers that belong to one connection, never forwarded in either
/// direction (RFC 9110 §7.6.1), with those a `Connection` header names.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// Request headers never passed on to the MCP server: the browser's cookies
/// for this origin (Drawbridge's own among them), the client's `Expect`
/// (answered here), and forwarding headers a client could forge — the
/// gateway sets `X-Forwarded-*` itself from the real peer.
const NOT_FORWARDED: &[&str] = &[
    "cookie",
    "expect",
    "forwarded",
    "x-real-ip",
    "x-client-ip",
    "true-client-ip",
];

/// Whether a header of the request (or of the upstream's answer) stays on
/// this hop: hop-by-hop by definition or named by the message's `Connection`.
fn hop_by_hop(name: &str, connection_named: &[String]) -> bool {
    HOP_BY_HOP.contains(&name) || connection_named.iter().any(|n| n == name)
}

/// The header names listed in a message's `Connection` header(s), lowercased.
fn connection_named<'a>(values: impl Iterator<Item = &'a header::HeaderValue>) -> Vec<String> {
    values
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect()
}

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

/// The token's record and its client when the token may reach this
/// resource. The client is checked at every use: a token of a disabled or
/// expired client stops working at once, as a revoked one does.
async fn authorize(
    state: &AppState,
    req: &HttpRequest,
) -> Result<(TokenRecord, ClientView), HttpResponse> {
    let scope = state.config.default_scopes.to_string();
    let Some(token) = super::bearer(req) else {
        return Err(challenge(state, None, &scope));
    };
    let now = state.clock.now();
    let msg = IntrospectToken { token, now };
    let unavailable = || {
        HttpResponse::ServiceUnavailable().json(serde_json::json!({"error": "temporarily_unavailable", "error_description": "try again"}))
    };
    let record = match state.broker.read(msg).await {
        Ok(Ok(r)) => r,
        _ => return Err(unavailable()),
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
    let client = GetClient {
        client_id: record.client_id.clone(),
        now,
    };
    let client = match state.registry.read(client).await {
        Ok(Ok(Some(c))) => c,
        Ok(Ok(None)) => {
            return Err(invalid(
                "the client is disabled, expired or no longer registered",
            ))
        }
        _ => return Err(unavailable()),
    };
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
    Ok((record, client))
}

/// Answers up to this size with a known length are relayed whole.
const BUFFER_UP_TO: u64 = 256 * 1024;

fn refuse(status: StatusCode, description: impl Into<String>) -> HttpResponse {
    OAuthError::new(status, ErrorCode::InvalidRequest, description).into_response()
}

/// The part of the raw request path (as the client wrote it, before any
/// decoding) after the gateway path: `/mcp/a/b` → `a/b`. The router decodes
/// everything but `%2F` (and `%25`, `%2B`), so the raw path has exactly as
/// many `/` before the tail as the gateway path.
fn raw_tail<'a>(raw_path: &'a str, gateway_path: &str) -> &'a str {
    let depth = gateway_path.matches('/').count();
    raw_path.splitn(depth + 2, '/').nth(depth + 1).unwrap_or("")
}

/// Decodes `%XX` escapes once (invalid escapes stay as they are).
fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a path tail could leave the upstream path at the MCP server or
/// anything between: a dot segment (`.`, `..`, also `...`, `.. ` and `..;x`,
/// which some servers read as `..`), a backslash (read as `/` by some) or a
/// control character — raw or percent-encoded, any case, encoded several
/// times over (a server that decodes twice reads `%252e` as `.`).
fn escapes_upstream_path(tail: &str) -> bool {
    let bad = |s: &str| {
        s.bytes().any(|b| b == b'\\' || b.is_ascii_control())
            || s.split('/').any(|segment| {
                let segment = segment.split(';').next().unwrap_or("").trim();
                !segment.is_empty() && segment.bytes().all(|b| b == b'.')
            })
    };
    let mut current = tail.to_owned();
    for _ in 0..4 {
        if bad(&current) {
            return true;
        }
        let decoded = percent_decode(&current);
        if decoded == current {
            return false;
        }
        current = decoded;
    }
    // Still decoding after four rounds: no honest path is encoded like this.
    true
}

/// The URL a request is forwarded to: the upstream URL's path, then the
/// request's tail and query. `None` when the result would not stay under
/// the upstream URL's path and origin (checked on the parsed URL, as the
/// HTTP client will send it).
fn target_url(upstream: &Url, tail: &str, query: &str) -> Option<Url> {
    let base = upstream.path().trim_end_matches('/').to_owned();
    let mut url = upstream.clone();
    let mut path = base.clone();
    if !tail.is_empty() {
        path.push('/');
        path.push_str(tail);
    }
    url.set_path(&path);
    let query = match (upstream.query().filter(|q| !q.is_empty()), query) {
        (Some(own), "") => Some(own.to_owned()),
        (Some(own), q) => Some(format!("{own}&{q}")),
        (None, "") => None,
        (None, q) => Some(q.to_owned()),
    };
    url.set_query(query.as_deref());
    url.set_fragment(None);
    let p = url.path();
    let inside = base.is_empty() || p == base || p.starts_with(&format!("{base}/"));
    (inside && url.origin() == upstream.origin()).then_some(url)
}

/// `X-Forwarded-For` for the MCP server: the real peer, appended to the
/// chain a trusted proxy passed on (see `rate_limit.trusted_proxies`);
/// without a trusted proxy in front, whatever the client claimed is dropped.
fn forwarded_for(req: &HttpRequest, trusted: &[super::client_addr::Cidr]) -> Option<String> {
    let peer = req.peer_addr()?.ip();
    let peer = match peer {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(peer),
        v4 => v4,
    };
    let mut chain: Vec<IpAddr> = Vec::new();
    if trusted.iter().any(|c| c.contains(peer)) {
        chain = forwarded_chain(req);
    }
    chain.push(peer);
    Some(
        chain
            .iter()
            .map(IpAddr::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// Reads the request body (after the token was checked), up to `limit`
/// bytes. The body-read deadline (see `connections`) bounds the time.
async fn read_body(mut payload: web::Payload, limit: usize) -> Result<web::Bytes, HttpResponse> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| {
            refuse(
                StatusCode::BAD_REQUEST,
                "the request body could not be read",
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is larger than {limit} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

async fn forward(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let started = Instant::now();
    let g = &state.config.settings.gateway;
    // WebSocket (or any) upgrades are not relayed: MCP runs over plain HTTP
    // (Streamable HTTP), and actix would read the rest of the connection as
    // this request's body.
    if req.headers().contains_key(header::UPGRADE) {
        outcome("refused", started);
        return refuse(
            StatusCode::BAD_REQUEST,
            "protocol upgrades (e.g. WebSocket) are not supported here; MCP uses Streamable HTTP",
        );
    }
    let tail = raw_tail(req.uri().path(), &g.path);
    if escapes_upstream_path(tail) {
        outcome("refused", started);
        return refuse(
            StatusCode::BAD_REQUEST,
            "the path has dot segments, backslashes or control characters",
        );
    }
    let (record, client) = match authorize(&state, &req).await {
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
    if g.upstream_url.is_empty() {
        outcome("not_configured", started);
        return HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"error": "temporarily_unavailable", "error_description": "no upstream MCP server is configured (GATEWAY_UPSTREAM_URL)"}));
    }
    let Some(url) = Url::parse(&g.upstream_url)
        .ok()
        .and_then(|u| target_url(&u, tail, req.query_string()))
    else {
        outcome("refused", started);
        return refuse(
            StatusCode::BAD_REQUEST,
            "the path does not stay under the MCP server's path",
        );
    };
    let limit = g.max_body_bytes as usize;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        outcome("refused", started);
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {limit} bytes"),
        );
    }
    let user = match upstream_token(&state, &client, &record).await {
        Ok(t) => t,
        Err(res) => {
            outcome("upstream_token", started);
            return res;
        }
    };
    let body = match read_body(payload, limit).await {
        Ok(b) => b,
        Err(res) => {
            outcome("refused", started);
            return res;
        }
    };
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes())
        .unwrap_or(reqwest::Method::POST);
    let mut upstream = state.gateway_http.request(method, url);
    let named = connection_named(req.headers().get_all(header::CONNECTION));
    for (name, value) in req.headers() {
        let n = name.as_str();
        if hop_by_hop(n, &named)
            || NOT_FORWARDED.contains(&n)
            || n.starts_with("x-forwarded-")
            || n == "authorization"
            || n.eq_ignore_ascii_case(&g.upstream_token_header)
            || n.starts_with("x-drawbridge-")
        {
            continue;
        }
        upstream = upstream.header(n, value.as_bytes());
    }
    if let Some(chain) = forwarded_for(&req, &state.config.trusted_proxies) {
        upstream = upstream.header("x-forwarded-for", chain);
    }
    let public = &state.config.base_url;
    upstream = upstream.header("x-forwarded-proto", public.scheme());
    if let Some(host) = public.host_str() {
        let host = match public.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        upstream = upstream.header("x-forwarded-host", host);
    }
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
    if response.status().as_u16() == 401 {
        // The MCP server refused the user's upstream token. Its own
        // challenge would send the client to another authorization server
        // (its `resource_metadata`); the client's way back is to sign in
        // again here, so it gets this server's challenge instead.
        outcome("upstream_unauthorized", started);
        let scope = state.config.default_scopes.to_string();
        return challenge(
            &state,
            Some((
                "invalid_token",
                "the MCP server refused the user's upstream credentials; sign in again",
            )),
            &scope,
        );
    }
    outcome("forwarded", started);
    let mut res = HttpResponse::build(
        StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
    );
    let named: Vec<String> = response
        .headers()
        .get_all("connection")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect();
    for (name, value) in response.headers() {
        // Set-Cookie: the MCP server's cookies would land on Drawbridge's
        // origin (beside its own), and are never sent back (see NOT_FORWARDED).
        // WWW-Authenticate: challenges are this server's to make; the MCP
        // server's would name another authorization server.
        if hop_by_hop(name.as_str(), &named)
            || name.as_str() == "set-cookie"
            || name.as_str() == "www-authenticate"
        {
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
    client: &ClientView,
    record: &TokenRecord,
) -> Result<crate::actors::vault::UserCredentials, HttpResponse> {
    let scope = state.config.default_scopes.to_string();
    let creds = upstream_credentials(state, None, client)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_is_cut_from_the_raw_path_after_the_gateway_path() {
        assert_eq!(raw_tail("/mcp", "/mcp"), "");
        assert_eq!(raw_tail("/mcp/", "/mcp"), "");
        assert_eq!(raw_tail("/mcp/a/b", "/mcp"), "a/b");
        assert_eq!(raw_tail("/%6dcp/../x", "/mcp"), "../x");
        assert_eq!(raw_tail("/api/mcp/a", "/api/mcp"), "a");
    }

    #[test]
    fn dot_segments_and_backslashes_are_found_however_encoded() {
        for bad in [
            "..",
            "../x",
            "a/../../x",
            "./x",
            "%2e%2e/x",
            "%2E%2E/%2E%2E/etc",
            ".%2e/x",
            "..%5c..%5cx",
            "..%5C",
            "a\\b",
            "%252e%252e/x",
            "%25252e%25252e/x",
            "..;/x",
            "...",
            "..%20/x",
            "a%00b",
            "%2e%2e%2fx",
        ] {
            assert!(escapes_upstream_path(bad), "{bad}");
        }
        for good in [
            "",
            "messages",
            "a..b",
            "a/b.c",
            ".well-known/x",
            "a%20b",
            "%41",
        ] {
            assert!(!escapes_upstream_path(good), "{good}");
        }
    }

    #[test]
    fn the_target_stays_under_the_upstream_path() {
        let up = Url::parse("http://up.example/base").unwrap();
        let t = |tail, q| target_url(&up, tail, q).map(|u| u.to_string());
        assert_eq!(t("", "").as_deref(), Some("http://up.example/base"));
        assert_eq!(
            t("messages", "x=1").as_deref(),
            Some("http://up.example/base/messages?x=1")
        );
        assert_eq!(t("../x", ""), None);
        assert_eq!(t("%2e%2e/x", ""), None);
        let root = Url::parse("http://up.example").unwrap();
        assert_eq!(
            target_url(&root, "tools", "")
                .map(|u| u.to_string())
                .as_deref(),
            Some("http://up.example/tools")
        );
    }
}
