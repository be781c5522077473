//! `POST /oauth/token`: reads the token request from the form, hands it to
//! [`tokens::exchange`], and renders what was issued (RFC 6749 §5.1).

use actix_web::body::BoxBody;
use actix_web::http::header::{HeaderValue, CACHE_CONTROL, PRAGMA};
use actix_web::http::Method;
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::client_auth::{parse_form, presented, secret, FormBody};
use crate::actors::token_broker::TokenPair;
use crate::actors::vault::UpstreamTokens;
use crate::http::cors::CorsPolicy;
use crate::http::errors::{refusal, OAuthError};
use crate::http::middleware::limited;
use crate::http::{client_ip, AppState};
use crate::rate_limit::Limit;
use crate::service::tokens::{self, CodeGrant, GrantRequest, Issued, RefreshGrant, TokenRequest};

pub fn configure(cfg: &mut web::ServiceConfig, cors: &CorsPolicy) {
    cfg.service(
        web::resource(["/oauth/token", "/token"])
            .wrap(from_fn(|req, next: Next<BoxBody>| {
                limited(Limit::Token, Method::POST, req, next)
            }))
            .route(web::post().to(token))
            .default_service(crate::http::allow("POST"))
            .wrap(cors.middleware(&[Method::POST])),
    );
}

async fn token(
    state: web::Data<AppState>,
    req: HttpRequest,
    FormBody(body): FormBody,
) -> HttpResponse {
    let answer = match token_request(&state, &req, &body) {
        Ok(request) => tokens::exchange(&state, request, &client_ip(&req))
            .await
            .map_err(refusal(&state)),
        Err(e) => Err(e),
    };
    no_store(match answer {
        Ok(issued) => HttpResponse::Ok().json(token_body(issued)),
        Err(e) => e.into_response(),
    })
}

/// Reads the token request from the form. Only what every request needs
/// (the form itself, `grant_type`, the client's credentials) is refused
/// here; the grant's own parameters are checked once the client is known.
fn token_request(
    state: &AppState,
    req: &HttpRequest,
    body: &[u8],
) -> Result<TokenRequest, OAuthError> {
    let form = parse_form(req, body)?;
    let grant_type = form
        .get("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
    let client = presented(req, &form).map_err(refusal(state))?;
    let grant = match grant_type.as_str() {
        "authorization_code" => GrantRequest::AuthorizationCode(CodeGrant {
            code: secret(&form, "code"),
            redirect_uri: form.get("redirect_uri").cloned(),
            code_verifier: secret(&form, "code_verifier"),
        }),
        "refresh_token" => GrantRequest::RefreshToken(RefreshGrant {
            refresh_token: secret(&form, "refresh_token"),
            scope: form.get("scope").cloned(),
        }),
        other => GrantRequest::Unsupported(other.to_owned()),
    };
    let resource = form.get("resource").cloned();
    Ok(TokenRequest {
        client,
        grant,
        resource,
    })
}

/// The successful response's body (RFC 6749 §5.1).
fn token_body(issued: Issued) -> serde_json::Value {
    match issued {
        Issued::Minted(pair) => minted(&pair),
        Issued::Stored { tokens, expires_in } => stored(&tokens, expires_in),
        Issued::Relayed(raw) => raw,
    }
}

fn minted(pair: &TokenPair) -> serde_json::Value {
    let mut body = json!({
        "access_token": pair.access_token.expose(),
        "token_type": "Bearer",
        "expires_in": pair.expires_in,
        "scope": pair.scope,
    });
    if let Some(rt) = &pair.refresh_token {
        body["refresh_token"] = json!(rt.expose());
    }
    body
}

/// `token_mode = "passthrough"`: the upstream's own tokens.
fn stored(tokens: &UpstreamTokens, expires_in: Option<i64>) -> serde_json::Value {
    let mut body = json!({
        "access_token": tokens.access_token,
        "token_type": "Bearer",
        "scope": tokens.scopes.join(" "),
    });
    if let Some(seconds) = expires_in {
        body["expires_in"] = json!(seconds);
    }
    if let Some(rt) = &tokens.refresh_token {
        body["refresh_token"] = json!(rt);
    }
    if let Some(id) = &tokens.id_token {
        body["id_token"] = json!(id);
    }
    body
}

/// Token responses, and their refusals, are never cached (RFC 6749 §5.1).
fn no_store(mut res: HttpResponse) -> HttpResponse {
    let h = res.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    res
}
