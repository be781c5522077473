//! `POST /oauth/revoke` (RFC 7009) and `POST /oauth/introspect` (RFC 7662).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use subtle::ConstantTimeEq;

use super::client_auth::{parse_form, presented, FormBody};
use super::token::authenticate;
use super::upstream_credentials;
use crate::actors::registry::GetClient;
use crate::actors::token_broker::{IntrospectToken, RevokeToken, TokenKind};
use crate::actors::vault::{DeleteUserCredentials, LoadUserCredentials, UserRef};
use crate::audit::AuditEvent;
use crate::domain::SecretToken;
use crate::http::errors::OAuthError;
use crate::http::{client_ip, AppState};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/oauth/revoke", web::post().to(revoke))
        .route("/oauth/introspect", web::post().to(introspect));
}

fn no_store(res: HttpResponse) -> HttpResponse {
    let mut res = res;
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
    no_store(match revoke_inner(&state, &req, &body).await {
        Ok(res) => res,
        Err(e) => e.into_response(),
    })
}

async fn revoke_inner(
    state: &AppState,
    req: &HttpRequest,
    body: &[u8],
) -> Result<HttpResponse, OAuthError> {
    let ip = client_ip(req);
    let form = parse_form(req, body)?;
    let who = presented(req, &form, &state.config.settings.auth.realm)?;
    let client = authenticate(state, &who, &ip).await?;
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let msg = RevokeToken {
        token: SecretToken::presented(token.as_str()),
        client_id: Some(client.client_id.clone()),
        now: state.clock.now(),
    };
    let revoked = state
        .broker
        .send(msg)
        .await
        .map_err(OAuthError::unavailable)?
        .map_err(|_| {
            OAuthError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "try again",
            )
        })?;
    if let Some(record) = revoked {
        AuditEvent::TokenRevoked {
            client_id: &client.client_id,
            ip: &ip,
            kind: record.kind.hint(),
            grant_id: &record.grant_id,
        }
        .emit();
        if record.kind == TokenKind::Refresh
            && state.config.settings.upstream.revoke_upstream_on_revoke
        {
            revoke_upstream(state, &client, &record.user).await;
        }
    }
    // RFC 7009 §2.2: the same answer whether or not the token was known.
    Ok(HttpResponse::Ok().finish())
}

/// Revokes the user's upstream refresh token and forgets their credentials.
async fn revoke_upstream(
    state: &AppState,
    client: &crate::actors::registry::ClientView,
    uid: &str,
) {
    let user = state
        .vault
        .read(LoadUserCredentials(UserRef::Id(uid.to_owned())))
        .await
        .ok()
        .and_then(|r| r.ok())
        .flatten();
    let (Some(user), Ok(creds)) = (user, upstream_credentials(state, None, client).await) else {
        return;
    };
    if let Some(rt) = &user.tokens.refresh_token {
        if let Err(e) = state.upstream.revoke(&creds, rt).await {
            tracing::warn!(error = %e, "upstream revocation failed");
        }
    }
    let _ = state
        .vault
        .send(DeleteUserCredentials(UserRef::Id(uid.to_owned())))
        .await;
}

async fn introspect(
    state: web::Data<AppState>,
    req: HttpRequest,
    FormBody(body): FormBody,
) -> HttpResponse {
    no_store(match introspect_inner(&state, &req, &body).await {
        Ok(res) => res,
        Err(e) => e.into_response(),
    })
}

/// Callers: a resource server with the configured introspection secret
/// (`Authorization: Bearer …`), or a client asking about its own tokens.
async fn introspect_inner(
    state: &AppState,
    req: &HttpRequest,
    body: &[u8],
) -> Result<HttpResponse, OAuthError> {
    let ip = client_ip(req);
    let form = parse_form(req, body)?;
    let secret = &state.config.settings.oauth.introspection_secret.0;
    let owner = match crate::http::bearer(req) {
        Some(t) => {
            let ok =
                !secret.is_empty() && bool::from(t.expose().as_bytes().ct_eq(secret.as_bytes()));
            if !ok {
                let mut e = OAuthError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_token",
                    "unknown introspection credential",
                );
                e.www_authenticate = Some(format!(
                    "Bearer realm=\"{}\"",
                    state.config.settings.auth.realm
                ));
                return Err(e);
            }
            None
        }
        None => {
            let who = presented(req, &form, &state.config.settings.auth.realm)?;
            Some(authenticate(state, &who, &ip).await?.client_id)
        }
    };
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let msg = IntrospectToken {
        token: SecretToken::presented(token.as_str()),
        now: state.clock.now(),
    };
    let record = state
        .broker
        .read(msg)
        .await
        .map_err(OAuthError::unavailable)?
        .map_err(|_| {
            OAuthError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "try again",
            )
        })?;
    let record = record.filter(|r| owner.as_ref().is_none_or(|o| *o == r.client_id));
    let Some(r) = record else {
        return Ok(HttpResponse::Ok().json(json!({"active": false})));
    };
    // A token of a disabled or expired client is no longer active.
    let client = GetClient {
        client_id: r.client_id.clone(),
        now: state.clock.now(),
    };
    let live = state
        .registry
        .read(client)
        .await
        .map_err(OAuthError::unavailable)?
        .map_err(OAuthError::unavailable)?;
    if live.is_none() {
        return Ok(HttpResponse::Ok().json(json!({"active": false})));
    }
    // The token names its user by the Vault's id; the identity comes from there.
    let user = state
        .vault
        .read(LoadUserCredentials(UserRef::Id(r.user.clone())))
        .await
        .ok()
        .and_then(|u| u.ok())
        .flatten();
    let mut body = json!({
        "active": true,
        "scope": r.scopes.join(" "),
        "client_id": r.client_id,
        "sub": user.as_ref().map_or(r.user.clone(), |u| u.sub.clone()),
        "token_type": if r.kind == TokenKind::Access { "Bearer" } else { "refresh_token" },
        "exp": r.expires_at,
        "iat": r.issued_at,
        "iss": state.config.issuer(),
    });
    // The email only to a holder of a grant that includes it, and only
    // when the issuer verified it.
    if grants_email(&r.scopes) {
        if let Some(email) = user.as_ref().and_then(|u| u.verified_email()) {
            body["username"] = json!(email);
        }
    }
    if let Some(aud) = &r.resource {
        body["aud"] = json!(aud);
    }
    Ok(HttpResponse::Ok().json(body))
}

/// Whether a grant's scopes include the user's email (`email`, or Google's
/// `https://www.googleapis.com/auth/userinfo.email`).
fn grants_email(scopes: &[String]) -> bool {
    scopes.iter().any(|s| {
        matches!(
            s.as_str(),
            "email" | "https://www.googleapis.com/auth/userinfo.email"
        )
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn email_and_googles_alias_grant_the_email_and_nothing_else_does() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(super::grants_email(&s(&["openid", "email"])));
        assert!(super::grants_email(&s(&[
            "https://www.googleapis.com/auth/userinfo.email"
        ])));
        for without in [
            &["openid"][..],
            &["openid", "profile", "emails"][..],
            &[][..],
        ] {
            assert!(!super::grants_email(&s(without)), "{without:?}");
        }
    }
}
