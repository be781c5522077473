//! The one place errors become responses. OAuth endpoints answer in the
//! RFC 6749 §5.2 shape: `{"error": "...", "error_description": "..."}`.

use actix_web::error::JsonPayloadError;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;

use super::AppState;
use crate::domain::ErrorCode;
use crate::service::error::{Challenge, ErrorKind, ServiceError};

// An RFC 6749 §5.2 error answer: its status, its body and its headers.
// Flows refuse with a `ServiceError`; `OAuthError::from_service` is where
// that becomes an answer. (A plain comment: a doc comment would become the
// schema's description in the committed OpenAPI document.)
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OAuthError {
    #[serde(skip)]
    pub status: StatusCode,
    #[schema(value_type = String)]
    pub error: ErrorCode,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error_description: String,
    /// Value of `WWW-Authenticate`, for 401 and 403 answers.
    #[serde(skip)]
    pub www_authenticate: Option<String>,
    /// Seconds for `Retry-After` (429 and 503 answers).
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl OAuthError {
    pub fn new(status: StatusCode, error: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            error_description: description.into(),
            www_authenticate: None,
            retry_after: None,
        }
    }

    /// The answer to a refused flow: its status, `Retry-After`, and for a
    /// 401 or 403 the challenge in `realm` (`Basic` for a client's
    /// credentials, `Bearer` with the error code for a token).
    pub fn from_service(e: ServiceError, realm: &str) -> Self {
        let mut answer = Self::new(status_of(e.kind), e.code, e.description.clone());
        answer.retry_after = e.retry_after();
        answer.www_authenticate = e.challenge().map(|scheme| match scheme {
            Challenge::Basic => format!("Basic realm=\"{realm}\""),
            Challenge::Bearer => bearer_challenge(&[("realm", realm), ("error", e.code.as_str())]),
        });
        answer
    }

    /// The same answer with another `WWW-Authenticate` value (a resource
    /// server's challenge names its metadata, see [`bearer_challenge`]).
    pub fn with_challenge(mut self, value: String) -> Self {
        self.www_authenticate = Some(value);
        self
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            description,
        )
    }

    /// RFC 6750 §3.1: a missing or bad bearer token.
    pub fn invalid_token(realm: &str, description: impl Into<String>) -> Self {
        Self::from_service(ServiceError::invalid_token(description.into()), realm)
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "no such endpoint",
        )
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::InvalidRequest,
            "method not allowed on this endpoint",
        )
    }

    pub fn server_error() -> Self {
        Self::from_service(ServiceError::server_error(), "")
    }

    /// 503 with `Retry-After`: an actor or the disk could not take the
    /// request now (nothing was acknowledged; the client may retry).
    pub fn unavailable(e: impl std::fmt::Display) -> Self {
        Self::from_service(ServiceError::storage(e), "")
    }

    pub fn into_response(self) -> HttpResponse {
        self.error_response()
    }
}

/// The status that answers a refusal.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Invalid => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A `WWW-Authenticate: Bearer` value with these parameters, in this order
/// (RFC 6750 §3), e.g. `[("realm", r), ("error", "invalid_token")]`.
pub fn bearer_challenge(params: &[(&str, &str)]) -> String {
    let params: Vec<String> = params.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("Bearer {}", params.join(", "))
}

/// The answer of the protected resource (the MCP gateway) to a request it
/// will not forward: RFC 6750 §3's Bearer challenge pointing at the
/// resource's metadata (RFC 9728) with the scopes the request needs.
/// `None` — no token was presented — names no error, in the challenge
/// (RFC 6750 §3.1) or in the body; a refusal that is no token problem
/// (503, 500) is answered as any other.
pub fn resource_challenge(
    config: &crate::configuration::Config,
    refusal: Option<ServiceError>,
    scope: &str,
) -> HttpResponse {
    let metadata = config.resource_metadata_url();
    let realm = config.oauth.realm.as_str();
    let mut params = vec![
        ("resource_metadata", metadata.as_str()),
        ("scope", scope),
        ("realm", realm),
    ];
    let Some(e) = refusal else {
        return HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, bearer_challenge(&params)))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(serde_json::json!({"error_description": "an access token is required"}));
    };
    if e.challenge() != Some(Challenge::Bearer) {
        return OAuthError::from_service(e, realm).into_response();
    }
    let description = e.description.clone();
    params.extend([
        ("error", e.code.as_str()),
        ("error_description", &description),
    ]);
    let value = bearer_challenge(&params);
    OAuthError::from_service(e, realm)
        .with_challenge(value)
        .into_response()
}

/// Maps a flow's refusal to the answer of this server's OAuth endpoints
/// (challenges in the configured realm): `.map_err(refusal(&state))`.
pub fn refusal(state: &AppState) -> impl Fn(ServiceError) -> OAuthError + '_ {
    |e| OAuthError::from_service(e, &state.config.oauth.realm)
}

impl From<ServiceError> for OAuthError {
    /// Without a realm: for refusals that challenge nothing.
    fn from(e: ServiceError) -> Self {
        Self::from_service(e, "")
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
                    ErrorCode::InvalidRequest,
                    format!("request body is larger than {limit} bytes"),
                ),
                JsonPayloadError::ContentType => OAuthError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    ErrorCode::InvalidRequest,
                    "Content-Type must be application/json",
                ),
                JsonPayloadError::Deserialize(de) => OAuthError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::InvalidClientMetadata,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn header(res: &HttpResponse, name: header::HeaderName) -> Option<&str> {
        res.headers().get(name).and_then(|v| v.to_str().ok())
    }

    #[test]
    fn a_refused_client_is_challenged_for_basic_credentials_in_the_realm() {
        let e = ServiceError::invalid_client("client authentication failed");
        let res = OAuthError::from_service(e, "drawbridge").into_response();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let challenge = header(&res, header::WWW_AUTHENTICATE);
        assert_eq!(challenge, Some("Basic realm=\"drawbridge\""));
        assert_eq!(header(&res, header::CACHE_CONTROL), Some("no-store"));
    }

    #[test]
    fn a_bad_token_is_challenged_for_a_bearer_token_with_its_error() {
        let res = OAuthError::invalid_token("r", "unknown").into_response();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let challenge = header(&res, header::WWW_AUTHENTICATE);
        assert_eq!(
            challenge,
            Some("Bearer realm=\"r\", error=\"invalid_token\"")
        );
    }

    #[test]
    fn rate_limits_and_storage_failures_say_when_to_retry_and_nothing_else_does() {
        let limited = OAuthError::from(ServiceError::rate_limited(7, "slow down"));
        let res = limited.into_response();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(header(&res, header::RETRY_AFTER), Some("7"));
        let res = OAuthError::unavailable("disk full").into_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(header(&res, header::RETRY_AFTER), Some("1"));
        let res = OAuthError::from(ServiceError::invalid_grant("expired")).into_response();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert!(header(&res, header::RETRY_AFTER).is_none());
        assert!(header(&res, header::WWW_AUTHENTICATE).is_none());
    }

    #[test]
    fn the_body_names_the_code_as_a_string_and_leaves_out_an_empty_description() {
        let e = OAuthError::from(ServiceError::invalid_grant("the code expired"));
        let body = serde_json::to_value(&e).unwrap();
        let expected =
            serde_json::json!({"error": "invalid_grant", "error_description": "the code expired"});
        assert_eq!(body, expected);
        let bare = OAuthError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest, "");
        let body = serde_json::to_value(&bare).unwrap();
        assert_eq!(body, serde_json::json!({"error": "invalid_request"}));
    }

    #[test]
    fn a_resource_servers_challenge_lists_its_parameters_in_order() {
        let value = bearer_challenge(&[("resource_metadata", "https://x/m"), ("scope", "openid")]);
        assert_eq!(
            value,
            "Bearer resource_metadata=\"https://x/m\", scope=\"openid\""
        );
    }
}
