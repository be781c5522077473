//! `POST /oauth/token`: the `authorization_code` and `refresh_token`
//! grants (RFC 6749 §4.1.3, §6; OAuth 2.1 refresh token rotation).

use actix_web::body::BoxBody;
use actix_web::http::Method;
use actix_web::http::StatusCode;
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::client_auth::{invalid_client, parse_form, presented, Form, FormBody, Presented};
use super::upstream_credentials;
use crate::actors::registry::{AuthenticateClient, ClientView, RegistryError};
use crate::actors::token_broker::{
    BrokerError, PeekRefresh, RedeemCode, RefreshTokens, RevokeGrant, TokenPair,
};
use crate::actors::vault::{LoadUserCredentials, UserRef};
use crate::audit::AuditEvent;
use crate::domain::{GrantType, ScopeSet, SecretToken};
use crate::http::errors::OAuthError;
use crate::http::middleware::limited;
use crate::http::{client_ip, AppState};
use crate::metrics::METRICS;
use crate::rate_limit::Limit;
use crate::service::session::{ensure_fresh, Freshness};
use crate::upstream::{Credentials, UpstreamError};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(["/oauth/token", "/token"])
            .wrap(from_fn(|req, next: Next<BoxBody>| {
                limited(Limit::Token, Method::POST, req, next)
            }))
            .route(web::post().to(token))
            .default_service(web::to(crate::http::method_not_allowed)),
    );
}

fn no_store(mut res: HttpResponse) -> HttpResponse {
    let h = res.headers_mut();
    h.insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    h.insert(
        actix_web::http::header::PRAGMA,
        actix_web::http::header::HeaderValue::from_static("no-cache"),
    );
    res
}

fn unavailable(description: &str) -> OAuthError {
    OAuthError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        description,
    )
}

fn invalid_grant(description: impl Into<String>) -> OAuthError {
    OAuthError::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

fn broker_error(e: BrokerError) -> OAuthError {
    match e {
        BrokerError::InvalidGrant(d) | BrokerError::Reuse(d) => invalid_grant(d),
        BrokerError::InvalidTarget => {
            OAuthError::new(StatusCode::BAD_REQUEST, "invalid_target", e.to_string())
        }
        BrokerError::InvalidScope => {
            OAuthError::new(StatusCode::BAD_REQUEST, "invalid_scope", e.to_string())
        }
        BrokerError::Store(s) => {
            tracing::error!(error = %s, "token storage failure");
            unavailable("storage is unavailable; try again")
        }
        other => OAuthError::invalid_request(other.to_string()),
    }
}

async fn token(
    state: web::Data<AppState>,
    req: HttpRequest,
    FormBody(body): FormBody,
) -> HttpResponse {
    let ip = client_ip(&req);
    let result = handle(&state, &req, &body, &ip).await;
    no_store(match result {
        Ok(res) => res,
        Err(e) => e.into_response(),
    })
}

async fn handle(
    state: &AppState,
    req: &HttpRequest,
    body: &[u8],
    ip: &str,
) -> Result<HttpResponse, OAuthError> {
    let realm = &state.config.settings.auth.realm;
    let form = parse_form(req, body)?;
    let grant_type = form
        .get("grant_type")
        .cloned()
        .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
    let who = presented(req, &form, realm)?;
    if !who.client_id.starts_with("mcp_")
        && state
            .config
            .settings
            .oauth
            .allow_direct_upstream_credentials
    {
        return direct(state, who, &form, &grant_type).await;
    }
    let client = authenticate(state, &who, ip).await?;
    let result = match grant_type.as_str() {
        "authorization_code" => code_grant(state, &client, &form, ip).await,
        "refresh_token" => refresh_grant(state, &client, &form, ip).await,
        other => Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!(
                "grant_type `{}` is not supported",
                other.chars().take(40).collect::<String>()
            ),
        )),
    };
    let grant_label = if ["authorization_code", "refresh_token"].contains(&grant_type.as_str()) {
        grant_type.as_str()
    } else {
        "other"
    };
    match &result {
        Ok((_, grant_id)) => {
            METRICS
                .token_exchanges
                .with_label_values(&[grant_label, "success"])
                .inc();
            if grant_type == "refresh_token" {
                AuditEvent::TokenRefreshed {
                    client_id: &client.client_id,
                    ip,
                    grant_id,
                }
                .emit()
            } else {
                AuditEvent::TokenIssued {
                    client_id: &client.client_id,
                    ip,
                    grant_id,
                }
                .emit()
            }
        }
        Err(e) => {
            METRICS
                .token_exchanges
                .with_label_values(&[grant_label, e.error])
                .inc();
            AuditEvent::TokenExchangeFailed {
                client_id: &client.client_id,
                ip,
                grant_type: grant_label,
                reason: e.error,
            }
            .emit()
        }
    }
    result.map(|(res, _)| res)
}

pub(super) async fn authenticate(
    state: &AppState,
    who: &Presented,
    ip: &str,
) -> Result<ClientView, OAuthError> {
    let msg = AuthenticateClient {
        client_id: who.client_id.clone(),
        method: who.method,
        secret: who.secret.clone(),
        now: state.clock.now(),
    };
    let shown: String = who
        .client_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(40)
        .collect();
    // Credentials that verify are never refused by the lock-out: it counts
    // failures per client *and* address, so a stranger who knows a client id
    // and sends wrong secrets locks out only their own attempts.
    match state.registry.read(msg).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(RegistryError::InvalidClient)) => {
            AuditEvent::InvalidClient {
                client_id: &shown,
                ip,
            }
            .emit();
            let key = format!("{shown}|{ip}");
            if let Some(wait) = state
                .limits
                .blocked(&key)
                .or_else(|| state.limits.failed_auth(&key))
            {
                return Err(locked_out(ip, &shown, wait));
            }
            Err(invalid_client(
                &state.config.settings.auth.realm,
                "client authentication failed; register again",
            ))
        }
        _ => Err(unavailable("the client registry is unavailable; try again")),
    }
}

fn token_response(pair: &TokenPair) -> HttpResponse {
    let mut body = json!({
        "access_token": pair.access_token.expose(),
        "token_type": "Bearer",
        "expires_in": pair.expires_in,
        "scope": pair.scope,
    });
    if let Some(rt) = &pair.refresh_token {
        body["refresh_token"] = json!(rt.expose());
    }
    HttpResponse::Ok().json(body)
}

fn check_resource(state: &AppState, form: &Form) -> Result<Option<String>, OAuthError> {
    match form.get("resource") {
        None => Ok(None),
        Some(r) if r.trim_end_matches('/') == state.config.resource() => {
            Ok(Some(state.config.resource()))
        }
        Some(_) => Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_target",
            "resource is not this server's protected resource",
        )),
    }
}

async fn code_grant(
    state: &AppState,
    client: &ClientView,
    form: &Form,
    ip: &str,
) -> Result<(HttpResponse, String), OAuthError> {
    let code = form
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let resource = check_resource(state, form)?;
    let passthrough = state.config.passthrough;
    let msg = RedeemCode {
        code: SecretToken::presented(code.as_str()),
        client_id: client.client_id.clone(),
        redirect_uri: form.get("redirect_uri").cloned(),
        code_verifier: form.get("code_verifier").cloned(),
        resource,
        mint: !passthrough,
        with_refresh: client
            .metadata
            .grant_types
            .contains(&GrantType::RefreshToken),
        now: state.clock.now(),
    };
    let redeemed = state
        .broker
        .send(msg)
        .await
        .map_err(|_| unavailable("the token service is unavailable"))?
        .map_err(|e| reuse_aware(e, client, ip))?;
    let grant_id = redeemed.grant.grant_id.clone();
    if let Some(pair) = &redeemed.pair {
        return Ok((token_response(pair), grant_id));
    }
    // token_mode = "passthrough": the upstream's own tokens, as stored.
    let user = state
        .vault
        .read(LoadUserCredentials(UserRef::Id(
            redeemed.grant.user.clone(),
        )))
        .await
        .map_err(|_| unavailable("the vault is unavailable"))?
        .map_err(|_| unavailable("the vault is unavailable"))?
        .ok_or_else(|| invalid_grant("the user's upstream credentials are gone"))?;
    let now = state.clock.now();
    let mut body = json!({
        "access_token": user.tokens.access_token,
        "token_type": "Bearer",
        "scope": user.tokens.scopes.join(" "),
    });
    if let Some(exp) = user.tokens.expires_at {
        body["expires_in"] = json!((exp - now).max(0));
    }
    if let Some(rt) = &user.tokens.refresh_token {
        body["refresh_token"] = json!(rt);
    }
    if let Some(id) = &user.tokens.id_token {
        body["id_token"] = json!(id);
    }
    Ok((HttpResponse::Ok().json(body), grant_id))
}

async fn refresh_grant(
    state: &AppState,
    client: &ClientView,
    form: &Form,
    ip: &str,
) -> Result<(HttpResponse, String), OAuthError> {
    let refresh = form
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    if !client
        .metadata
        .grant_types
        .contains(&GrantType::RefreshToken)
    {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "this client did not register the refresh_token grant",
        ));
    }
    check_resource(state, form)?;
    if state.config.passthrough {
        let creds = upstream_credentials(state, None, client).await?;
        let tokens = state
            .upstream
            .refresh(&creds, refresh)
            .await
            .map_err(upstream_error)?;
        return Ok((HttpResponse::Ok().json(tokens.raw), String::new()));
    }
    let refresh_token = SecretToken::presented(refresh.as_str());
    let scopes = match form.get("scope") {
        Some(raw) => Some(
            ScopeSet::parse(raw, state.config.registration.google_scope_aliases)
                .map_err(|e| {
                    OAuthError::new(StatusCode::BAD_REQUEST, "invalid_scope", e.to_string())
                })?
                .tokens()
                .to_vec(),
        ),
        None => None,
    };
    let peek = PeekRefresh {
        refresh_token: refresh_token.clone(),
        client_id: client.client_id.clone(),
        now: state.clock.now(),
    };
    let record = state
        .broker
        .read(peek)
        .await
        .map_err(|_| unavailable("the token service is unavailable"))?
        .map_err(|e| reuse_aware(e, client, ip))?;
    if record.rotated_at.is_none() {
        let creds = upstream_credentials(state, None, client).await?;
        match ensure_fresh(state, &record.user, &creds).await {
            Ok(_) => {}
            Err(Freshness::Revoked) => {
                let _ = state
                    .broker
                    .send(RevokeGrant {
                        grant_id: record.grant_id.clone(),
                    })
                    .await;
                return Err(invalid_grant(
                    "access was withdrawn at the identity provider; sign in again",
                ));
            }
            Err(Freshness::Unavailable) => {
                return Err(unavailable(
                    "the identity provider is unavailable; try again",
                ))
            }
        }
    }
    let msg = RefreshTokens {
        refresh_token,
        client_id: client.client_id.clone(),
        scopes,
        now: state.clock.now(),
    };
    let pair = state
        .broker
        .send(msg)
        .await
        .map_err(|_| unavailable("the token service is unavailable"))?
        .map_err(|e| reuse_aware(e, client, ip))?;
    Ok((token_response(&pair), pair.grant_id.clone()))
}

fn upstream_error(e: UpstreamError) -> OAuthError {
    match e {
        UpstreamError::Rejected { error, description } if error == "invalid_grant" => {
            invalid_grant(description)
        }
        UpstreamError::Rejected { error, .. } => OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("the identity provider answered {error}"),
        ),
        UpstreamError::Unavailable(_) => {
            unavailable("the identity provider is unavailable; try again")
        }
    }
}

/// The source document's backward compatibility: a client id without the
/// `mcp_` prefix is a real upstream client, and its request goes upstream.
async fn direct(
    state: &AppState,
    who: Presented,
    form: &Form,
    grant_type: &str,
) -> Result<HttpResponse, OAuthError> {
    tracing::warn!(client_id = %who.client_id, "direct upstream credentials used at the token endpoint (compatibility switch)");
    let creds = Credentials {
        client_id: who.client_id.clone(),
        client_secret: who.secret.as_ref().map(|s| s.expose().to_owned()),
    };
    let tokens = match grant_type {
        "authorization_code" => {
            let code = form
                .get("code")
                .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
            let redirect = form.get("redirect_uri").cloned().unwrap_or_default();
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            state
                .upstream
                .exchange_code(&creds, code, &verifier, &redirect)
                .await
        }
        "refresh_token" => {
            let rt = form
                .get("refresh_token")
                .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
            state.upstream.refresh(&creds, rt).await
        }
        _ => {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "authorization_code or refresh_token",
            ))
        }
    };
    Ok(HttpResponse::Ok().json(tokens.map_err(upstream_error)?.raw))
}

/// A client id locked out after too many failed authentications: counted,
/// audited, and answered 429 with `Retry-After`.
fn locked_out(ip: &str, client_id: &str, wait: std::time::Duration) -> OAuthError {
    METRICS
        .rate_limited
        .with_label_values(&["failed_client_auth"])
        .inc();
    AuditEvent::RateLimited {
        ip,
        limit: "failed_client_auth",
        client_id: Some(client_id),
    }
    .emit();
    rate_limited(wait)
}

fn rate_limited(wait: std::time::Duration) -> OAuthError {
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    let mut e = OAuthError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "temporarily_unavailable",
        format!("too many failed client authentications; retry in {seconds} s"),
    );
    e.retry_after = Some(seconds);
    e
}

/// Maps a broker error, auditing a detected reuse on the way.
fn reuse_aware(e: BrokerError, client: &ClientView, ip: &str) -> OAuthError {
    if let BrokerError::Reuse(reason) = &e {
        AuditEvent::TokenReuseDetected {
            client_id: &client.client_id,
            ip,
            reason,
        }
        .emit();
    }
    broker_error(e)
}
