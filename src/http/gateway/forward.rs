//! Forwarding one request to the MCP server and relaying its answer: small
//! answers of known size whole, everything else (Server-Sent Events
//! included) streamed as it arrives.

use std::sync::Arc;

use actix_web::http::{header, StatusCode};
use actix_web::HttpResponseBuilder;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use url::Url;

use super::headers::{copy_answer_headers, forwarded_request};
use super::tools_list::{filter_events, filter_json};
use super::Refusal;
use crate::http::AppState;
use crate::mcp::ToolScopes;
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

/// The MCP server's answer, passed on to the client (its `tools/list`
/// results filtered when `filter` is given).
pub(super) async fn relay(answer: reqwest::Response, filter: Option<ListFilter>) -> HttpResponse {
    let mut res = HttpResponse::build(
        StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
    );
    copy_answer_headers(&mut res, &answer);
    let event_stream = answer
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if let Some(filter) = filter {
        return filtered(res, answer, filter, event_stream).await;
    }
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

/// Which tools a `tools/list` answer may keep: the scope table and the
/// token's scopes.
pub(super) struct ListFilter {
    pub table: ToolScopes,
    pub granted: Vec<String>,
}

/// Larger answers (or events) pass unfiltered rather than held in memory.
const FILTER_UP_TO: usize = 8 << 20;

/// Relays an answer to `tools/list` with the tools the token may not call
/// left out: a JSON answer read whole, an event stream event by event.
async fn filtered(
    mut res: HttpResponseBuilder,
    answer: reqwest::Response,
    filter: ListFilter,
    event_stream: bool,
) -> HttpResponse {
    let filter = Arc::new(filter);
    let mut inner = answer.bytes_stream();
    if event_stream {
        res.insert_header(("x-accel-buffering", "no"));
        let events = futures_util::stream::unfold(
            (inner, Vec::new(), false),
            move |(mut inner, mut buffer, done)| {
                let filter = filter.clone();
                async move {
                    if done {
                        return None;
                    }
                    loop {
                        match inner.next().await {
                            Some(Ok(chunk)) => {
                                buffer.extend_from_slice(&chunk);
                                let mut out = Vec::new();
                                let used = filter_events(
                                    &buffer,
                                    &filter.table,
                                    &filter.granted,
                                    &mut out,
                                );
                                buffer.drain(..used);
                                if buffer.len() > FILTER_UP_TO {
                                    out.append(&mut buffer);
                                }
                                if !out.is_empty() {
                                    return Some((
                                        Ok(web::Bytes::from(out)),
                                        (inner, buffer, false),
                                    ));
                                }
                            }
                            Some(Err(e)) => {
                                let e = actix_web::error::ErrorBadGateway(e);
                                return Some((Err(e), (inner, buffer, true)));
                            }
                            None if buffer.is_empty() => return None,
                            None => {
                                let rest = web::Bytes::from(std::mem::take(&mut buffer));
                                return Some((Ok(rest), (inner, buffer, true)));
                            }
                        }
                    }
                }
            },
        );
        return without_length(res.streaming(events));
    }
    let mut body = Vec::new();
    while let Some(chunk) = inner.next().await {
        match chunk {
            Ok(chunk) => body.extend_from_slice(&chunk),
            Err(e) => {
                tracing::warn!(error = %e, "MCP upstream answer cut off");
                return HttpResponse::BadGateway().json(serde_json::json!({"error": "bad_gateway", "error_description": "the MCP server's answer was cut off"}));
            }
        }
        if body.len() > FILTER_UP_TO {
            // Too large to hold: pass it on as it is.
            let head = futures_util::stream::once(async move { Ok(web::Bytes::from(body)) });
            let rest = inner.map(|chunk| chunk.map_err(actix_web::error::ErrorBadGateway));
            return res.streaming(head.chain(rest));
        }
    }
    match filter_json(&body, &filter.table, &filter.granted) {
        Some(changed) => without_length(res.body(changed)),
        None => res.body(body),
    }
}

/// The MCP server's `Content-Length` no longer holds for a changed body.
fn without_length(mut res: HttpResponse) -> HttpResponse {
    res.headers_mut().remove(header::CONTENT_LENGTH);
    res
}
