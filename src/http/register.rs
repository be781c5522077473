//! Dynamic client registration (RFC 7591) and client configuration
//! (RFC 7592): `/oauth/register` (alias `/register`) and
//! `/oauth/register/{client_id}`: the request read here, the flows in
//! [`crate::service::clients::registration`], the client information
//! response rendered here.

use actix_web::body::BoxBody;
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use super::client_addr::address_key;
use super::cors::CorsPolicy;
use super::errors::{refusal, OAuthError};
use super::middleware::limited;
use super::{allow, bearer, client_ip, AppState};
use crate::actors::registry::ClientView;
use crate::domain::{RedirectUri, RegistrationRequest, ScopeSet, SecretToken};
use crate::rate_limit::Limit;
use crate::service::clients::registration::{self, Management, Origin};

pub fn configure(cfg: &mut web::ServiceConfig, cors: &CorsPolicy) {
    cfg.service(
        web::resource(["/oauth/register", "/register"])
            .wrap(from_fn(|req, next: Next<BoxBody>| {
                limited(Limit::Registration, Method::POST, req, next)
            }))
            .route(web::post().to(register))
            .default_service(allow("POST"))
            .wrap(cors.middleware(&[Method::POST])),
    );
    cfg.service(
        web::resource("/oauth/register/{client_id}")
            .wrap(cors.middleware(&[Method::GET, Method::PUT, Method::DELETE]))
            .route(web::get().to(read))
            .route(web::put().to(update))
            .route(web::delete().to(delete))
            .default_service(allow("GET, PUT, DELETE")),
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
    #[schema(value_type = Vec<String>)]
    redirect_uris: &'a [RedirectUri],
    grant_types: Vec<&'static str>,
    response_types: [&'static str; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    scope: Option<&'a ScopeSet>,
    token_endpoint_auth_method: &'static str,
    application_type: &'static str,
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
        scope: m.scope.as_ref(),
        token_endpoint_auth_method: m.auth_method.as_str(),
        application_type: m.application_type.as_str(),
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

async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<RegistrationRequest>,
) -> Result<HttpResponse, OAuthError> {
    let ip = client_ip(&req);
    let origin = Origin {
        address_key: address_key(&ip),
        ip,
    };
    let registered = registration::register(&state, body.into_inner(), &origin)
        .await
        .map_err(refusal(&state))?;
    let client = &registered.client;
    let secret = registered.client_secret.as_ref();
    let token = &registered.registration_token;
    let mut res = render(&state, StatusCode::CREATED, client, secret, token);
    let location = state
        .config
        .public_url(&format!("/oauth/register/{}", client.client_id));
    if let Ok(location) = header::HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, location);
    }
    Ok(res)
}

/// What a client configuration request presents: the client id from the
/// path, the registration access token from `Authorization: Bearer`.
fn management(req: &HttpRequest, client_id: String) -> Management {
    Management {
        client_id,
        token: bearer(req).filter(|t| !t.expose().is_empty()),
        ip: client_ip(req),
    }
}

async fn read(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, OAuthError> {
    let m = management(&req, path.into_inner());
    let (client, token) = registration::read(&state, &m)
        .await
        .map_err(refusal(&state))?;
    Ok(render(&state, StatusCode::OK, &client, None, &token))
}

async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<RegistrationRequest>,
) -> Result<HttpResponse, OAuthError> {
    let m = management(&req, path.into_inner());
    let (updated, token) = registration::update(&state, &m, body.into_inner())
        .await
        .map_err(refusal(&state))?;
    let secret = updated.new_secret.as_ref();
    Ok(render(
        &state,
        StatusCode::OK,
        &updated.client,
        secret,
        &token,
    ))
}

async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, OAuthError> {
    let m = management(&req, path.into_inner());
    registration::delete(&state, &m)
        .await
        .map_err(refusal(&state))?;
    Ok(HttpResponse::NoContent()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}
