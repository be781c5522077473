//! The gateway's RFC 6750 answers: the `WWW-Authenticate: Bearer` challenge
//! pointing the client at this server's protected-resource metadata
//! (RFC 9728), for a missing or refused token, a missing scope, or upstream
//! credentials the user must renew by signing in again.

use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;

use crate::configuration::Config;
use crate::domain::ErrorCode;
use crate::http::oauth::credentials_error;
use crate::service::session::{AccessRefusal, SessionRefusal};

/// A Bearer challenge: 401, or 403 for `insufficient_scope`; without an
/// error when no token was presented (RFC 6750 §3.1).
pub(super) fn challenge(
    config: &Config,
    error: Option<(ErrorCode, &str)>,
    scope: &str,
) -> HttpResponse {
    let metadata = config.resource_metadata_url();
    let realm = &config.settings.auth.realm;
    let mut value =
        format!("Bearer resource_metadata=\"{metadata}\", scope=\"{scope}\", realm=\"{realm}\"");
    if let Some((code, description)) = error {
        value.push_str(&format!(
            ", error=\"{code}\", error_description=\"{description}\""
        ));
    }
    let status = match error {
        Some((ErrorCode::InsufficientScope, _)) => StatusCode::FORBIDDEN,
        _ => StatusCode::UNAUTHORIZED,
    };
    // Without a token there is no error (RFC 6750 §3.1): the body says
    // what is needed and, like the header, names no error code.
    let body = match error {
        Some((code, description)) => {
            serde_json::json!({"error": code, "error_description": description})
        }
        None => serde_json::json!({"error_description": "an access token is required"}),
    };
    HttpResponse::build(status)
        .insert_header((header::WWW_AUTHENTICATE, value))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

/// `invalid_token` for the scopes a sign-in grants by default.
pub(super) fn invalid_token(config: &Config, description: &str) -> HttpResponse {
    let scope = config.default_scopes.to_string();
    challenge(config, Some((ErrorCode::InvalidToken, description)), &scope)
}

/// The answer to a token the gateway does not accept.
pub(super) fn access_refused(config: &Config, refusal: AccessRefusal) -> HttpResponse {
    let description = match refusal {
        AccessRefusal::NoToken => {
            let scope = config.default_scopes.to_string();
            return challenge(config, None, &scope);
        }
        AccessRefusal::InsufficientScope => {
            let needed = config.gateway_scopes.tokens().join(" ");
            let description = "the access token lacks a required scope";
            return challenge(
                config,
                Some((ErrorCode::InsufficientScope, description)),
                &needed,
            );
        }
        AccessRefusal::Unavailable => {
            return HttpResponse::ServiceUnavailable().json(serde_json::json!({"error": "temporarily_unavailable", "error_description": "try again"}));
        }
        AccessRefusal::UnknownToken => "the access token is unknown, expired or revoked",
        AccessRefusal::OtherResource => "the access token is for another resource",
        AccessRefusal::ClientGone => "the client is disabled, expired or no longer registered",
    };
    invalid_token(config, description)
}

/// The answer when the user's upstream token cannot be had.
pub(super) fn session_refused(config: &Config, refusal: SessionRefusal) -> HttpResponse {
    match refusal {
        SessionRefusal::Credentials(e) => credentials_error(e).into_response(),
        SessionRefusal::Revoked => invalid_token(
            config,
            "access was withdrawn at the identity provider; sign in again",
        ),
        SessionRefusal::Unavailable => HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"error": "temporarily_unavailable"})),
    }
}
