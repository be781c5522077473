//! Reading what a client presents at the token, revocation and
//! introspection endpoints: its credentials (RFC 6749 §2.3:
//! `client_secret_basic`, `client_secret_post` or, for public clients,
//! `none`), checked by [`crate::service::tokens::authenticate`]; and form
//! parsing that refuses repeated parameters (RFC 6749 §3.2).

use std::collections::HashMap;

use actix_web::dev::Payload;
use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::domain::{AuthMethod, ErrorCode, SecretToken};
use crate::http::errors::OAuthError;
use crate::service::tokens::Presented;
use crate::service::ServiceError;

pub type Form = HashMap<String, String>;

/// The raw body of a form endpoint. A body over `server.max_body_bytes` (or
/// one that cannot be read) is answered in the RFC 6749 §5.2 shape rather
/// than actix's plain-text error.
pub struct FormBody(pub web::Bytes);

impl FromRequest for FormBody {
    type Error = OAuthError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, OAuthError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<web::Data<crate::http::AppState>>()
            .map(|s| s.config.server.max_body_bytes);
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            bytes.await.map(FormBody).map_err(|e| {
                if e.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
                    OAuthError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        ErrorCode::InvalidRequest,
                        match limit {
                            Some(n) => format!("request body is larger than {n} bytes"),
                            None => "request body is too large".to_owned(),
                        },
                    )
                } else {
                    OAuthError::invalid_request("the request body could not be read")
                }
            })
        })
    }
}

/// Parses an `application/x-www-form-urlencoded` body.
pub fn parse_form(req: &HttpRequest, body: &[u8]) -> Result<Form, OAuthError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded (JSON is not accepted at this endpoint)",
        ));
    }
    parse_form_body(body)
}

/// Decodes a form body, refusing a parameter sent twice (RFC 6749 §3.2).
/// The content type is [`parse_form`]'s to check.
pub fn parse_form_body(body: &[u8]) -> Result<Form, OAuthError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|_| OAuthError::invalid_request("the form body is malformed"))?;
    let mut form = Form::new();
    for (k, v) in pairs {
        if form.insert(k.clone(), v).is_some() {
            return Err(OAuthError::invalid_request(format!(
                "parameter `{k}` is repeated"
            )));
        }
    }
    Ok(form)
}

/// The value of a form parameter that is a secret (a code, a token).
pub fn secret(form: &Form, name: &str) -> Option<SecretToken> {
    form.get(name).map(|v| SecretToken::presented(v.as_str()))
}

/// Reads the client's credentials from the Authorization header or the form.
pub fn presented(req: &HttpRequest, form: &Form) -> Result<Presented, ServiceError> {
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"));
    if let Some((_, encoded)) = basic {
        return client_secret_basic(encoded, form);
    }
    let client_id = form
        .get("client_id")
        .filter(|c| !c.is_empty())
        .cloned()
        .ok_or_else(|| ServiceError::invalid_client("client authentication is required"))?;
    match form.get("client_secret").filter(|s| !s.is_empty()) {
        Some(secret) => Ok(Presented {
            client_id,
            secret: Some(SecretToken::presented(secret.clone())),
            method: AuthMethod::ClientSecretPost,
        }),
        None => Ok(Presented {
            client_id,
            secret: None,
            method: AuthMethod::None,
        }),
    }
}

/// `client_secret_basic` (RFC 6749 §2.3.1): id and secret form-encoded,
/// joined by `:`, in base64; never together with a secret in the form.
fn client_secret_basic(encoded: &str, form: &Form) -> Result<Presented, ServiceError> {
    if form.contains_key("client_secret") {
        return Err(ServiceError::invalid_request(
            "use one client authentication method, not two",
        ));
    }
    let malformed = || ServiceError::invalid_client("malformed Basic credentials");
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(malformed)?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let client_id = decode(id);
    if form.get("client_id").is_some_and(|f| *f != client_id) {
        return Err(ServiceError::invalid_request(
            "client_id in the form differs from the Authorization header",
        ));
    }
    Ok(Presented {
        client_id,
        secret: Some(SecretToken::presented(decode(secret))),
        method: AuthMethod::ClientSecretBasic,
    })
}
