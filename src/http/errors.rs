//! The one place errors become responses. OAuth endpoints answer in the
//! RFC 6749 §5.2 shape: `{"error": "...", "error_description": "..."}`.

use actix_web::error::JsonPayloadError;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;

use crate::actors::registry::RegistryError;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OAuthError {
    #[serde(skip)]
    pub status: StatusCode,
    pub error: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error_description: String,
    /// Value of `WWW-Authenticate`, for 401 answers.
    #[serde(skip)]
    pub www_authenticate: Option<String>,
    /// Seconds for `Retry-After` (429 answers).
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl OAuthError {
    pub fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            error_description: description.into(),
            www_authenticate: None,
            retry_after: None,
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// RFC 6750 §3.1: a missing or bad bearer token.
    pub fn invalid_token(realm: &str, description: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, "invalid_token", description);
        e.www_authenticate = Some(format!("Bearer realm=\"{realm}\", error=\"invalid_token\""));
        e
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            "method not allowed on this endpoint",
        )
    }

    pub fn server_error() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the server could not complete the request",
        )
    }

    /// 503 with `Retry-After`: an actor or the disk could not take the
    /// request now (nothing was acknowledged; the client may retry).
    pub fn unavailable(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "request refused: storage or actor unavailable");
        let mut err = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the server cannot store this change right now; try again shortly",
        );
        err.retry_after = Some(1);
        err
    }

    pub fn into_response(self) -> HttpResponse {
        self.error_response()
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.error_description)
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        res.insert_header((header::CACHE_CONTROL, "no-store"));
        if let Some(seconds) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        if let Some(value) = &self.www_authenticate {
            res.insert_header((header::WWW_AUTHENTICATE, value.clone()));
        }
        res.json(self)
    }
}

/// Maps a Registry failure for the registration endpoints (RFC 7591/7592).
pub fn registry_error(e: RegistryError, realm: &str) -> OAuthError {
    match e {
        RegistryError::InvalidToken => OAuthError::invalid_token(realm, e.to_string()),
        RegistryError::InvalidClient => {
            let mut err =
                OAuthError::new(StatusCode::UNAUTHORIZED, "invalid_client", e.to_string());
            err.www_authenticate = Some(format!("Basic realm=\"{realm}\""));
            err
        }
        RegistryError::Metadata(m) => {
            OAuthError::new(StatusCode::BAD_REQUEST, m.code(), m.to_string())
        }
        RegistryError::Full(_) => OAuthError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            e.to_string(),
        ),
        RegistryError::TooManyUnused(_) => {
            let mut err = OAuthError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "temporarily_unavailable",
                e.to_string(),
            );
            err.retry_after = Some(60);
            err
        }
        RegistryError::Store(store) => OAuthError::unavailable(store),
    }
}

/// The JSON extractor's limits, with its failures in RFC 7591 shape.
pub fn json_config(limit: usize) -> actix_web::web::JsonConfig {
    actix_web::web::JsonConfig::default()
        .limit(limit)
        .content_type_required(true)
        .content_type(|mime| mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json"))
        .error_handler(|err, _req: &HttpRequest| {
            let e = match &err {
                JsonPayloadError::Overflow { limit }
                | JsonPayloadError::OverflowKnownLength { limit, .. } => OAuthError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "invalid_request",
                    format!("request body is larger than {limit} bytes"),
                ),
                JsonPayloadError::ContentType => OAuthError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "invalid_request",
                    "Content-Type must be application/json",
                ),
                JsonPayloadError::Deserialize(de) => OAuthError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_client_metadata",
                    describe_json_error(de),
                ),
                other => {
                    OAuthError::invalid_request(format!("could not read the request body: {other}"))
                }
            };
            e.into()
        })
}

/// Says where and what kind of JSON problem, without echoing the values
/// serde_json would quote (they may be secrets sent in the wrong field).
fn describe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Syntax => "malformed JSON",
        Category::Eof => "JSON ends early",
        Category::Data => "a field has the wrong type or a required field is missing",
        Category::Io => "the body could not be read",
    };
    format!(
        "request body is not valid client metadata: {what} (line {}, column {})",
        e.line(),
        e.column()
    )
}
