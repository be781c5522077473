//! `POST /oauth/revoke` (RFC 7009) and `POST /oauth/introspect` (RFC 7662):
//! the form read here, the flows in [`crate::service::tokens`].

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::client_auth::{parse_form, presented, secret, FormBody};
use crate::http::cors::CorsPolicy;
use crate::http::errors::{refusal, OAuthError};
use crate::http::{bearer, client_ip, AppState};
use crate::service::tokens::{self, ActiveToken, Introspection, Introspector};

/// Revocation answers browser clients (`cors`); introspection is for
/// resource servers and does not.
pub fn configure(cfg: &mut web::ServiceConfig, cors: &CorsPolicy) {
    cfg.service(
        web::resource("/oauth/revoke")
            .wrap(cors.middleware(&[actix_web::http::Method::POST]))
            .route(web::post().to(revoke))
            .default_service(crate::http::allow("POST")),
    )
    .service(
        web::resource("/oauth/introspect")
            .route(web::post().to(introspect))
            .default_service(crate::http::allow("POST")),
    );
}

fn no_store(answer: Result<HttpResponse, OAuthError>) -> HttpResponse {
    let mut res = answer.unwrap_or_else(OAuthError::into_response);
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    res
}

async fn revoke(
    state: web::Data<AppState>,
    req: HttpRequest,
    FormBody(body): FormBody,
) -> HttpResponse {
    let revoked = async {
        let form = parse_form(&req, &body)?;
        let who = presented(&req, &form).map_err(refusal(&state))?;
        let token = secret(&form, "token");
        tokens::revoke(&state, &who, token, &client_ip(&req))
            .await
            .map_err(refusal(&state))
    };
    // RFC 7009 §2.2: the same answer whether or not the token was known.
    no_store(revoked.await.map(|()| HttpResponse::Ok().finish()))
}

/// Callers: a resource server with the configured introspection secret
/// (`Authorization: Bearer …`), or a client asking about its own tokens.
async fn introspect(
    state: web::Data<AppState>,
    req: HttpRequest,
    FormBody(body): FormBody,
) -> HttpResponse {
    let answer = async {
        let form = parse_form(&req, &body)?;
        let who = match bearer(&req) {
            Some(secret) => Introspector::ResourceServer(secret),
            None => Introspector::Client(presented(&req, &form).map_err(refusal(&state))?),
        };
        let token = secret(&form, "token");
        tokens::introspect(&state, who, token, &client_ip(&req))
            .await
            .map_err(refusal(&state))
    };
    no_store(
        answer
            .await
            .map(|i| HttpResponse::Ok().json(introspection_body(i))),
    )
}

/// The introspection response (RFC 7662 §2.2).
fn introspection_body(introspection: Introspection) -> serde_json::Value {
    let Introspection::Active(t) = introspection else {
        return json!({"active": false});
    };
    let ActiveToken {
        scope,
        client_id,
        sub,
        username,
        token_type,
        exp,
        iat,
        iss,
        aud,
    } = t;
    let mut body = json!({
        "active": true,
        "scope": scope,
        "client_id": client_id,
        "sub": sub,
        "token_type": token_type,
        "exp": exp,
        "iat": iat,
        "iss": iss,
    });
    if let Some(email) = username {
        body["username"] = json!(email);
    }
    if let Some(aud) = aud {
        body["aud"] = json!(aud);
    }
    body
}
