//! The admin API under `/admin/v1`: clients (and their connection
//! timelines), users, tokens and operations,
//! behind a bearer admin token compared in constant time. Failed attempts
//! are rate limited and audited; every action emits `admin_action`.

pub(crate) mod access;
mod auth;
pub(crate) mod clients;
pub(crate) mod ops;
pub(crate) mod timeline;
pub(crate) mod users;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::service::error::{ErrorKind, ServiceError};

pub use auth::{AdminIdentity, AdminToken};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin/v1")
            .app_data(
                web::JsonConfig::default()
                    .limit(64 * 1024)
                    .error_handler(|e, _| {
                        ApiError::bad_request(format!(
                            "the JSON body is not valid here: {}",
                            describe_json(&e)
                        ))
                        .into()
                    }),
            )
            .app_data(web::QueryConfig::default().error_handler(|e, _| {
                ApiError::bad_request(format!("a query parameter is not valid: {e}")).into()
            }))
            .app_data(
                web::PathConfig::default()
                    .error_handler(|_, _| ApiError::not_found("no such resource").into()),
            )
            .configure(access::configure)
            .configure(clients::configure)
            .configure(timeline::configure)
            .configure(users::configure)
            .configure(ops::configure)
            .default_service(web::to(|| async {
                ApiError::not_found("no such admin endpoint").error_response()
            })),
    );
}

/// The admin API's error body.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"error": "not_found", "message": "no client mcp_… here"}))]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    /// A stable code: `unauthorized`, `not_found`, `bad_request`, `rate_limited`, `unavailable`.
    pub error: &'static str,
    pub message: String,
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            error,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "a backing service is unavailable; try again",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        res.insert_header(("Cache-Control", "no-store"));
        if self.status == StatusCode::UNAUTHORIZED {
            res.insert_header(("WWW-Authenticate", "Bearer realm=\"drawbridge-admin\""));
        }
        if let Some(s) = self.retry_after {
            res.insert_header(("Retry-After", s.to_string()));
        }
        res.json(self)
    }
}

/// The answer to an admin operation that failed, logged with the
/// operation's name: `.map_err(failed("get_client"))`. The admin API's
/// codes are its own (`not_found`, `bad_request`, `conflict`,
/// `unavailable`), whatever the flow's RFC code.
pub fn failed(operation: &'static str) -> impl Fn(ServiceError) -> ApiError {
    move |e| {
        tracing::warn!(operation, error = %e, "admin operation failed");
        let message = e.description.into_owned();
        match e.kind {
            ErrorKind::NotFound => ApiError::not_found(message),
            ErrorKind::Invalid => ApiError::bad_request(message),
            ErrorKind::Conflict => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            _ => ApiError::unavailable(),
        }
    }
}

/// An actor's failure in an admin operation: logged, answered 503.
pub fn unavailable<E: std::fmt::Display>(operation: &'static str) -> impl Fn(E) -> ApiError {
    move |e| {
        tracing::error!(operation, error = %e, "admin operation failed: a backing service is unavailable");
        ApiError::unavailable()
    }
}

/// Names the problem without echoing submitted values.
fn describe_json(e: &actix_web::error::JsonPayloadError) -> &'static str {
    use actix_web::error::JsonPayloadError::*;
    match e {
        Overflow { .. } | OverflowKnownLength { .. } => "the body is too large",
        ContentType => "Content-Type must be application/json",
        Deserialize(_) => "malformed JSON or a field of the wrong type",
        _ => "the body could not be read",
    }
}
