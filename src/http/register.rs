//! Dynamic client registration (RFC 7591) and client configuration
//! (RFC 7592): `/oauth/register` (alias `/register`) and
//! `/oauth/register/{client_id}`.

use actix_web::body::BoxBody;
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use super::errors::{registry_error, OAuthError};
use super::middleware::limited;
use super::{client_ip, method_not_allowed, AppState};
use crate::actors::registry::{
    ClientView, DeleteClient, ReadClient, RegisterClient, RemoveClient, UpdateClient,
};
use crate::actors::token_broker::RevokeClientGrants;
use crate::actors::vault::{DeleteSecrets, SealSecret, VaultError, MAX_SECRET_BYTES};
use crate::audit::AuditEvent;
use crate::domain::{ClientId, ClientMetadata, RegistrationRequest, SecretToken};
use crate::http::oauth::UPSTREAM_CLIENT_SECRET;
use crate::metrics::METRICS;
use crate::rate_limit::Limit;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(["/oauth/register", "/register"])
            .wrap(from_fn(|req, next: Next<BoxBody>| {
                limited(Limit::Registration, Method::POST, req, next)
            }))
            .route(web::post().to(register))
            .default_service(web::to(method_not_allowed)),
    );
    cfg.service(
        web::resource("/oauth/register/{client_id}")
            .route(web::get().to(read))
            .route(web::put().to(update))
            .route(web::delete().to(delete))
            .default_service(web::to(method_not_allowed)),
    );
}

/// The client information response (RFC 7591 §3.2.1, RFC 7592 §3).
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ClientResponse<'a> {
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<&'a str>,
    client_id_issued_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret_expires_at: Option<i64>,
    registration_access_token: &'a str,
    registration_client_uri: String,
    client_name: Option<&'a str>,
    redirect_uris: &'a [String],
    grant_types: Vec<&'static str>,
    response_types: [&'static str; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
    token_endpoint_auth_method: &'static str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    contacts: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    logo_uri: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_uri: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy_uri: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tos_uri: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    software_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    software_version: Option<&'a str>,
}

fn render(
    state: &AppState,
    status: StatusCode,
    client: &ClientView,
    secret: Option<&SecretToken>,
    registration_token: &SecretToken,
) -> HttpResponse {
    let m = &client.metadata;
    let body = ClientResponse {
        client_id: &client.client_id,
        client_secret: secret.map(SecretToken::expose),
        client_id_issued_at: client.issued_at,
        // The secret itself does not expire; the client does (see DESIGN).
        client_secret_expires_at: m.auth_method.has_secret().then_some(0),
        registration_access_token: registration_token.expose(),
        registration_client_uri: state
            .config
            .public_url(&format!("/oauth/register/{}", client.client_id)),
        client_name: m.client_name.as_deref(),
        redirect_uris: &m.redirect_uris,
        grant_types: m.grant_type_names(),
        response_types: ["code"],
        scope: m.scope.as_deref(),
        token_endpoint_auth_method: m.auth_method.as_str(),
        contacts: &m.contacts,
        logo_uri: m.logo_uri.as_deref(),
        client_uri: m.client_uri.as_deref(),
        policy_uri: m.policy_uri.as_deref(),
        tos_uri: m.tos_uri.as_deref(),
        software_id: m.software_id.as_deref(),
        software_version: m.software_version.as_deref(),
    };
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body)
}

/// Emits the refusal and returns it, for `?`-style early returns.
fn refused(ip: &str, e: OAuthError) -> OAuthError {
    AuditEvent::RegistrationRefused {
        ip,
        reason: e.error,
    }
    .emit();
    METRICS.registrations.with_label_values(&[e.error]).inc();
    e
}

async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<RegistrationRequest>,
) -> Result<HttpResponse, OAuthError> {
    let ip = client_ip(&req);
    let realm = &state.config.settings.auth.realm;
    let body = body.into_inner();
    let upstream_secret = body.upstream_client_secret.clone();
    let metadata = ClientMetadata::parse(body, &state.config.registration)
        .map_err(|e| refused(&ip, registry_error(e.into(), realm)))?;
    let now = state.clock.now();
    let registered = state
        .registry
        .send(RegisterClient {
            metadata,
            origin: Some(crate::http::client_addr::address_key(&ip)),
            now,
        })
        .await
        .map_err(OAuthError::unavailable)?
        .map_err(|e| refused(&ip, registry_error(e, realm)))?;
    if let Some(evicted) = &registered.evicted {
        METRICS
            .registrations
            .with_label_values(&["evicted_unused"])
            .inc();
        AuditEvent::ClientEvicted {
            client_id: evicted,
            ip: &ip,
        }
        .emit();
    }
    let client = &registered.client;
    if let Err(e) = seal_upstream_secret(&state, &client.client_id, upstream_secret).await {
        // All or nothing: a client whose secret could not be kept is removed
        // again, and the registrant (who never saw its id) is told 503. A
        // crash between the two writes leaves a client nobody knows, which
        // expires as never used (`unused_expiry_minutes`).
        let removed = state
            .registry
            .send(RemoveClient {
                client_id: client.client_id.clone(),
            })
            .await;
        if !matches!(removed, Ok(Ok(_))) {
            tracing::error!(client_id = %client.client_id, "a registration whose upstream secret could not be stored was not rolled back; it expires unused");
        }
        return Err(refused(&ip, e));
    }
    METRICS.registrations.with_label_values(&["created"]).inc();
    AuditEvent::ClientRegistered {
        client_id: &client.client_id,
        ip: &ip,
        auth_method: client.auth_method().as_str(),
    }
    .emit();
    let mut res = render(
        &state,
        StatusCode::CREATED,
        client,
        registered.client_secret.as_ref(),
        &registered.registration_token,
    );
    if let Ok(location) = header::HeaderValue::from_str(
        &state
            .config
            .public_url(&format!("/oauth/register/{}", client.client_id)),
    ) {
        res.headers_mut().insert(header::LOCATION, location);
    }
    Ok(res)
}

/// The client id from the path and the bearer token from the header, or
/// `invalid_token` when either is missing or malformed.
fn credentials(
    state: &AppState,
    req: &HttpRequest,
    raw_id: &str,
) -> Result<(ClientId, SecretToken), OAuthError> {
    let realm = &state.config.settings.auth.realm;
    let token = bearer_token(req).ok_or_else(|| {
        OAuthError::invalid_token(
            realm,
            "an Authorization: Bearer registration access token is required",
        )
    })?;
    let id = ClientId::parse(raw_id).ok_or_else(|| reject(state, req, raw_id))?;
    Ok((id, token))
}

fn reject(state: &AppState, req: &HttpRequest, client_id: &str) -> OAuthError {
    let shown: String = client_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(40)
        .collect();
    AuditEvent::InvalidRegistrationToken {
        client_id: &shown,
        ip: &client_ip(req),
    }
    .emit();
    registry_error(
        crate::actors::registry::RegistryError::InvalidToken,
        &state.config.settings.auth.realm,
    )
}

fn bearer_token(req: &HttpRequest) -> Option<SecretToken> {
    super::bearer(req).filter(|t| !t.expose().is_empty())
}

/// Maps a Registry failure on a client configuration request, auditing bad tokens.
fn config_error(
    state: &AppState,
    req: &HttpRequest,
    id: &ClientId,
    e: crate::actors::registry::RegistryError,
) -> OAuthError {
    if matches!(e, crate::actors::registry::RegistryError::InvalidToken) {
        return reject(state, req, id.as_str());
    }
    registry_error(e, &state.config.settings.auth.realm)
}

async fn read(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, OAuthError> {
    let (client_id, token) = credentials(&state, &req, &path)?;
    let msg = ReadClient {
        client_id: client_id.clone(),
        registration_token: token.clone(),
        now: state.clock.now(),
    };
    let client = state
        .registry
        .read(msg)
        .await
        .map_err(OAuthError::unavailable)?
        .map_err(|e| config_error(&state, &req, &client_id, e))?;
    AuditEvent::ClientRead {
        client_id: client_id.as_str(),
        ip: &client_ip(&req),
    }
    .emit();
    Ok(render(&state, StatusCode::OK, &client, None, &token))
}

async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<RegistrationRequest>,
) -> Result<HttpResponse, OAuthError> {
    let (client_id, token) = credentials(&state, &req, &path)?;
    let mut body = body.into_inner();
    if body
        .client_id
        .as_deref()
        .is_some_and(|id| id != client_id.as_str())
    {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            "client_id in the body does not match the URL",
        ));
    }
    let presented_secret = body.client_secret.take().map(SecretToken::presented);
    let upstream_secret = body.upstream_client_secret.clone();
    // A registration is rolled back when the Vault refuses its secret; an
    // update cannot be, so the Vault's limit is checked before anything changes.
    if upstream_secret
        .as_ref()
        .is_some_and(|s| s.len() > MAX_SECRET_BYTES)
    {
        return Err(secret_too_long());
    }
    let metadata = ClientMetadata::parse(body, &state.config.registration)
        .map_err(|e| registry_error(e.into(), &state.config.settings.auth.realm))?;
    let msg = UpdateClient {
        client_id: client_id.clone(),
        registration_token: token.clone(),
        presented_secret,
        metadata,
        now: state.clock.now(),
    };
    let updated = state
        .registry
        .send(msg)
        .await
        .map_err(OAuthError::unavailable)?
        .map_err(|e| config_error(&state, &req, &client_id, e))?;
    if upstream_secret.is_some() {
        seal_upstream_secret(&state, client_id.as_str(), upstream_secret).await?;
    } else if updated.client.metadata.upstream_client_id.is_none() {
        // No custom upstream client any more: its secret goes.
        forget_upstream_secret(&state, client_id.as_str()).await;
    }
    AuditEvent::ClientUpdated {
        client_id: client_id.as_str(),
        ip: &client_ip(&req),
    }
    .emit();
    Ok(render(
        &state,
        StatusCode::OK,
        &updated.client,
        updated.new_secret.as_ref(),
        &token,
    ))
}

async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, OAuthError> {
    let (client_id, token) = credentials(&state, &req, &path)?;
    let msg = DeleteClient {
        client_id: client_id.clone(),
        registration_token: token,
        now: state.clock.now(),
    };
    state
        .registry
        .send(msg)
        .await
        .map_err(OAuthError::unavailable)?
        .map_err(|e| config_error(&state, &req, &client_id, e))?;
    // A deleted client takes every token it holds with it, and its custom
    // upstream client secret.
    let _ = state
        .broker
        .send(RevokeClientGrants {
            client_ids: vec![client_id.as_str().to_owned()],
        })
        .await;
    forget_upstream_secret(&state, client_id.as_str()).await;
    AuditEvent::ClientDeleted {
        client_id: client_id.as_str(),
        ip: &client_ip(&req),
    }
    .emit();
    Ok(HttpResponse::NoContent()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

fn secret_too_long() -> OAuthError {
    OAuthError::new(
        StatusCode::BAD_REQUEST,
        "invalid_client_metadata",
        "upstream_client_secret is too long",
    )
}

/// Deletes a removed client's custom upstream client secret, if it had one.
pub(crate) async fn forget_upstream_secret(state: &AppState, client_id: &str) {
    let msg = DeleteSecrets {
        kind: UPSTREAM_CLIENT_SECRET.into(),
        ids: vec![client_id.to_owned()],
    };
    if !matches!(state.vault.send(msg).await, Ok(Ok(_))) {
        tracing::error!(
            client_id,
            "the custom upstream client secret of a removed client could not be deleted"
        );
    }
}

/// Seals a custom upstream client secret (source document's custom OAuth
/// clients) in the Vault under the proxy client's id.
async fn seal_upstream_secret(
    state: &AppState,
    client_id: &str,
    secret: Option<String>,
) -> Result<(), OAuthError> {
    let Some(secret) = secret else { return Ok(()) };
    let msg = SealSecret {
        kind: UPSTREAM_CLIENT_SECRET.into(),
        id: client_id.to_owned(),
        plaintext: secret.into_bytes(),
    };
    match state.vault.send(msg).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(VaultError::TooLarge)) => Err(secret_too_long()),
        _ => Err(OAuthError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the upstream client secret could not be stored",
        )),
    }
}
