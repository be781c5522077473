//! Discovery: RFC 9728 protected resource metadata and RFC 8414
//! authorization server metadata (not as OpenID configuration: see [`configure`]).

use actix_web::{web, HttpResponse};
use serde::Serialize;

use super::cors::CorsPolicy;
use super::errors::OAuthError;
use super::{allow, AppState};
use crate::configuration::Config;
use crate::domain::AuthMethod;
use actix_web::http::Method;

/// The discovery documents. With an issuer that has a path
/// (`BASE_URL=https://host/drawbridge`), the authorization server's
/// metadata is also served where RFC 8414 §3.1 puts it
/// (`/.well-known/oauth-authorization-server/drawbridge`); the root
/// location stays for a proxy that strips the path.
///
/// `/.well-known/openid-configuration` is not served: Drawbridge is not an
/// OpenID provider (it issues no ID tokens of its own and publishes no
/// keys; the ID token a client may receive is Google's, whose issuer is
/// Google), so an OpenID discovery document here would be false. MCP
/// clients try the RFC 8414 location first and use it.
pub fn configure(cfg: &mut web::ServiceConfig, base_path: &str, cors: &CorsPolicy) {
    cfg.service(
        web::resource("/.well-known/oauth-protected-resource")
            .wrap(cors.middleware(&[Method::GET]))
            .route(web::get().to(protected_resource_root))
            .default_service(allow("GET")),
    )
    .service(
        web::resource("/.well-known/oauth-protected-resource/{path:.*}")
            .wrap(cors.middleware(&[Method::GET]))
            .route(web::get().to(protected_resource))
            .default_service(allow("GET")),
    );
    let mut metadata = vec!["/.well-known/oauth-authorization-server".to_owned()];
    if !base_path.is_empty() {
        metadata.push(format!(
            "/.well-known/oauth-authorization-server{base_path}"
        ));
    }
    cfg.service(
        web::resource(metadata)
            .wrap(cors.middleware(&[Method::GET]))
            .route(web::get().to(authorization_server))
            .default_service(allow("GET")),
    );
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ProtectedResource {
    resource: String,
    authorization_servers: Vec<String>,
    scopes_supported: Vec<String>,
    bearer_methods_supported: Vec<&'static str>,
    /// The source document's field: where the AS metadata lives.
    oauth_authorization_server: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_documentation: Option<String>,
}

fn resource_metadata(config: &Config, resource_path: &str) -> HttpResponse {
    let body = ProtectedResource {
        resource: config.public_url(resource_path),
        authorization_servers: vec![config.issuer()],
        scopes_supported: config.registration.supported_scopes.tokens().to_vec(),
        // Tokens in query strings or form bodies leak into logs (OAuth 2.1 §5).
        bearer_methods_supported: vec!["header"],
        oauth_authorization_server: config.authorization_server_metadata_url(),
        resource_documentation: documentation(config),
    };
    HttpResponse::Ok().json(body)
}

/// `/.well-known/oauth-protected-resource`: the gateway is the protected
/// resource, so the root document describes it too.
async fn protected_resource_root(state: web::Data<AppState>) -> HttpResponse {
    resource_metadata(&state.config, &state.config.gateway.path)
}

/// `/.well-known/oauth-protected-resource/{path}` (RFC 9728 §3.1): only for
/// resources this server protects (the gateway's path after the issuer's,
/// or without it behind a proxy that strips it); any other is unknown.
async fn protected_resource(state: web::Data<AppState>, path: web::Path<String>) -> HttpResponse {
    let requested = format!("/{}", path.into_inner());
    let gateway = &state.config.gateway.path;
    let full = format!("{}{gateway}", state.config.base_path());
    if requested != *gateway && requested != full {
        return OAuthError::not_found().into_response();
    }
    resource_metadata(&state.config, gateway)
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct AuthorizationServer {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    registration_endpoint: String,
    revocation_endpoint: String,
    introspection_endpoint: String,
    revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    scopes_supported: Vec<String>,
    response_types_supported: Vec<&'static str>,
    response_modes_supported: Vec<&'static str>,
    grant_types_supported: Vec<&'static str>,
    token_endpoint_auth_methods_supported: Vec<&'static str>,
    code_challenge_methods_supported: Vec<&'static str>,
    authorization_response_iss_parameter_supported: bool,
    client_id_metadata_document_supported: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_documentation: Option<String>,
}

async fn authorization_server(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(AuthorizationServer::of(&state.config))
}

impl AuthorizationServer {
    /// RFC 8414 metadata of this server.
    fn of(config: &Config) -> Self {
        Self {
            issuer: config.issuer(),
            authorization_endpoint: config.public_url("/oauth/authorize"),
            token_endpoint: config.public_url("/oauth/token"),
            registration_endpoint: config.public_url("/oauth/register"),
            revocation_endpoint: config.public_url("/oauth/revoke"),
            introspection_endpoint: config.public_url("/oauth/introspect"),
            revocation_endpoint_auth_methods_supported: AuthMethod::ALL
                .iter()
                .map(|m| m.as_str())
                .collect(),
            // Values from the IANA registry of client authentication methods
            // only; resource servers' bearer secrets are not one of them.
            introspection_endpoint_auth_methods_supported: vec![
                "client_secret_post",
                "client_secret_basic",
            ],
            // offline_access is understood in requests (and dropped: Drawbridge
            // decides refresh tokens itself); only the authorization server
            // advertises it, not the resource.
            scopes_supported: config
                .registration
                .supported_scopes
                .tokens()
                .iter()
                .cloned()
                .chain([crate::domain::OFFLINE_ACCESS.to_owned()])
                .collect(),
            response_types_supported: vec!["code"],
            response_modes_supported: vec!["query"],
            grant_types_supported: vec!["authorization_code", "refresh_token"],
            token_endpoint_auth_methods_supported: AuthMethod::ALL
                .iter()
                .map(|m| m.as_str())
                .collect(),
            code_challenge_methods_supported: vec!["S256"],
            authorization_response_iss_parameter_supported: true,
            client_id_metadata_document_supported: config.oauth.cimd.policy.enabled,
            service_documentation: documentation(config),
        }
    }
}

fn documentation(config: &Config) -> Option<String> {
    config.oauth.service_documentation.clone()
}
