//! Forwarding one request to the MCP server and relaying its answer: small
//! answers of known size whole, everything else (Server-Sent Events
//! included) streamed as it arrives.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use url::Url;

use super::headers::{copy_answer_headers, forwarded_request};
use super::Refusal;
use crate::http::AppState;
use crate::service::session::UpstreamSession;

/// Answers up to this size with a known length are relayed whole.
const BUFFER_UP_TO: u64 = 256 * 1024;

/// Reads the request body (after the token was checked), up to `limit`
/// bytes. The body-read deadline (see `connections`) bounds the time.
pub(super) async fn read_body(
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, Refusal> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| Refusal::BodyUnreadable)?;
        if body.len() + chunk.len() > limit {
            return Err(Refusal::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Sends the request to the MCP server with the user's upstream token;
/// answers the MCP server's answer, or why there is none.
pub(super) async fn send(
    state: &AppState,
    req: &HttpRequest,
    url: Url,
    session: &UpstreamSession,
    body: web::Bytes,
) -> Result<reqwest::Response, Refusal> {
    let g = &state.config.gateway;
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes())
        .unwrap_or(reqwest::Method::POST);
    let upstream = state.gateway_http.request(method, url);
    let upstream = forwarded_request(upstream, req, &state.config, session);
    let timeout = g.response_timeout;
    let answer = match tokio::time::timeout(timeout, upstream.body(body).send()).await {
        Err(_) => return Err(Refusal::Timeout),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "MCP upstream unreachable");
            return Err(Refusal::Unreachable);
        }
        Ok(Ok(answer)) => answer,
    };
    if answer.status().as_u16() == 401 {
        // The MCP server refused the user's upstream token. Its own
        // challenge would send the client to another authorization server
        // (its `resource_metadata`); the client's way back is to sign in
        // again here, so it gets this server's challenge instead.
        return Err(Refusal::UpstreamUnauthorized);
    }
    Ok(answer)
}

/// The MCP server's answer, passed on to the client.
pub(super) async fn relay(answer: reqwest::Response) -> HttpResponse {
    let mut res = HttpResponse::build(
        StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
    );
    copy_answer_headers(&mut res, &answer);
    let event_stream = answer
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if event_stream {
        // Never let a proxy buffer an event stream.
        res.insert_header(("x-accel-buffering", "no"));
    } else if answer.content_length().is_some_and(|n| n <= BUFFER_UP_TO) {
        // A small answer of known size (most JSON-RPC replies): pass it on
        // whole, which is cheaper than relaying it chunk by chunk.
        return match answer.bytes().await {
            Ok(body) => res.body(body),
            Err(e) => {
                tracing::warn!(error = %e, "MCP upstream answer cut off");
                HttpResponse::BadGateway().json(serde_json::json!({"error": "bad_gateway", "error_description": "the MCP server's answer was cut off"}))
            }
        };
    }
    res.streaming(
        answer
            .bytes_stream()
            .map(|chunk| chunk.map_err(actix_web::error::ErrorBadGateway)),
    )
}
