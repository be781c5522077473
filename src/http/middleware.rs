//! Request middleware: metrics for every request, a limit on header sizes,
//! and the rate limits.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage, HttpResponse};

use super::errors::OAuthError;
use super::{client_ip, AppState};
use crate::audit::AuditEvent;
use crate::domain::ErrorCode;
use crate::metrics::METRICS;
use crate::rate_limit::Limit;

/// The method as a metric label: the standard methods by name, any other
/// token (a client may send `M0000001XXXX`) as `other`, so a client cannot
/// create new series.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Counts and times every request by route template, method and status.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let started = Instant::now();
    let method = method_label(req.method());
    let res = next.call(req).await?.map_into_boxed_body();
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".into());
    let status = res.status().as_u16().to_string();
    METRICS
        .http_requests
        .with_label_values(&[&route, method, &status])
        .inc();
    METRICS
        .http_duration
        .with_label_values(&[&route, method])
        .observe(started.elapsed().as_secs_f64());
    Ok(res)
}

/// Largest total size of a request's header fields, names and values.
/// actix-http itself reads heads up to 128 KiB; no client of this server
/// needs more than a few KiB, so larger ones are refused before any handler.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Refuses requests whose header fields are too large: 431, RFC-shaped body.
pub async fn limit_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let size: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if size > MAX_HEADER_BYTES {
        let e = OAuthError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorCode::InvalidRequest,
            format!("the request's header fields are larger than {MAX_HEADER_BYTES} bytes"),
        );
        return Ok(req.into_response(e.into_response()));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// The answer to a request over quota: 429, `Retry-After`, RFC-shaped body.
pub fn too_many(wait: std::time::Duration) -> HttpResponse {
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    let mut e = OAuthError::new(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::TemporarilyUnavailable,
        format!("rate limit exceeded; retry in {seconds} s"),
    );
    e.retry_after = Some(seconds);
    e.into_response()
}

/// The rate limit of one route, attached with
/// `.wrap(from_fn(|req, next: Next<BoxBody>| limited(Limit::X, Method::POST, req, next)))`:
/// a request to the route with `method` counts against the quota of its
/// client's address, and one over quota is refused before the handler runs,
/// so it stores nothing. The limit belongs to the route, not to a spelling
/// of its path, so every spelling that routes here (`/oauth/regist%65r`,
/// the `/register` alias) shares one quota.
pub async fn limited(
    limit: Limit,
    method: Method,
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    if *req.method() == method {
        if let Some(state) = req.app_data::<web::Data<AppState>>() {
            let ip = client_ip(req.request());
            let key = super::client_addr::address_key(&ip);
            if let Err(wait) = state.limits.check(limit, &key) {
                METRICS
                    .rate_limited
                    .with_label_values(&[limit.label()])
                    .inc();
                AuditEvent::RateLimited {
                    ip: &ip,
                    limit: limit.label(),
                    client_id: None,
                }
                .emit();
                return Ok(req.into_response(too_many(wait)));
            }
        }
    }
    next.call(req).await
}

/// The request log's span: the path without its query (OAuth queries carry
/// upstream codes and states, a gateway query may carry anything), and the
/// client address as the trusted-proxy rules decide it, never an unchecked
/// `X-Forwarded-For`.
pub struct RequestSpan;

impl tracing_actix_web::RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> tracing::Span {
        let user_agent = request
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let request_id = request
            .extensions()
            .get::<tracing_actix_web::RequestId>()
            .copied();
        tracing::info_span!(
            "HTTP request",
            http.method = method_label(request.method()),
            http.target = %request.path(),
            http.client_ip = %client_ip(request.request()),
            http.user_agent = %user_agent,
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            request_id = request_id.map(|id| id.to_string()).unwrap_or_default(),
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(
        span: tracing::Span,
        outcome: &Result<ServiceResponse<B>, Error>,
    ) {
        tracing_actix_web::DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}
