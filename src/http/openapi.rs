//! The OpenAPI document of the whole HTTP surface (public and admin),
//! served at `/openapi.json` with Swagger UI at `/swagger-ui/`, printed by
//! `drawbridge openapi` and committed as `openapi/openapi.json`.
//!
//! Public endpoints are described by the documentation-only functions
//! below (their handlers render bodies the schemas here describe); the
//! admin handlers carry their own `#[utoipa::path]`.

#![allow(dead_code)]

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

use super::admin::{access, clients, ops, timeline, users, ApiError};
use super::errors::OAuthError;
use super::health::{Endpoints, OAuthHealth};
use super::register::ClientResponse;
use super::wellknown::{AuthorizationServer, ProtectedResource};
use crate::domain::RegistrationRequest;

/// Swagger UI and the document it shows.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/swagger-ui",
        web::get().to(|| async {
            HttpResponse::MovedPermanently()
                .insert_header(("Location", "/swagger-ui/"))
                .finish()
        }),
    )
    .service(SwaggerUi::new("/swagger-ui/{_:.*}").url("/openapi.json", ApiDoc::openapi()));
}

/// The document as pretty JSON (`drawbridge openapi`).
pub fn document() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default() + "\n"
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Drawbridge", description = "OAuth 2.1 gateway for MCP servers: dynamic client registration in front of Google sign-in, and its admin API."),
    paths(
        protected_resource, protected_resource_path, authorization_server,
        register, register_alias, read_client, update_client, delete_client,
        authorize, authorize_alias, consent, callback, callback_alias,
        token, token_alias, revoke, introspect,
        health_oauth, health_live, health_ready, metrics, openapi_json,
        gateway_post, gateway_get, gateway_delete, gateway_tail,
        dev_authorize_page, dev_authorize_submit, dev_token, dev_userinfo, dev_revoke,
        clients::list_clients, clients::get_client, clients::revoke_client, clients::disable_client, clients::enable_client,
        timeline::client_timeline,
        users::list_users, users::revoke_user, users::revoke_tokens,
        ops::stats, ops::run_janitor, ops::rotate_key,
        access::access_policy,
    ),
    components(schemas(OAuthError, ApiError, Endpoints)),
    modifiers(&Security),
    tags(
        (name = "discovery", description = "RFC 8414 and RFC 9728 metadata"),
        (name = "registration", description = "RFC 7591 / RFC 7592 dynamic client registration"),
        (name = "sign-in", description = "Authorization, consent and the upstream callback (pages and redirects)"),
        (name = "tokens", description = "Token, revocation (RFC 7009) and introspection (RFC 7662)"),
        (name = "health", description = "Health, readiness and metrics"),
        (name = "gateway", description = "The protected MCP endpoint, forwarded to the upstream MCP server"),
        (name = "development provider", description = "The built-in identity provider (UPSTREAM_PROVIDER=dev only)"),
        (name = "admin: clients"), (name = "admin: users"), (name = "admin: tokens"), (name = "admin: operations"),
        (name = "admin: access", description = "Who may sign in: the access policy in service"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "registration_access_token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"access_token": "mcp_at_…", "token_type": "Bearer", "expires_in": 3600, "refresh_token": "mcp_rt_…", "scope": "openid email"}))]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: Option<i64>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    /// Only with `token_mode = "passthrough"`.
    pub id_token: Option<String>,
}

/// Form fields of `POST /oauth/token`.
#[derive(Deserialize, ToSchema)]
pub struct TokenRequest {
    /// `authorization_code` or `refresh_token`.
    pub grant_type: String,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    /// RFC 8707.
    pub resource: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// Form fields of `POST /oauth/revoke` and `POST /oauth/introspect`.
#[derive(Deserialize, ToSchema)]
pub struct TokenRequestByValue {
    pub token: String,
    pub token_type_hint: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// RFC 7662 introspection: `{"active": false}` alone for an inactive token.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct IntrospectionResponse {
    pub active: bool,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub sub: Option<String>,
    pub username: Option<String>,
    pub token_type: Option<String>,
    pub exp: Option<i64>,
    pub iat: Option<i64>,
    pub iss: Option<String>,
    pub aud: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Status {
    pub status: String,
    pub reason: Option<String>,
}

/// Form fields of the consent page.
#[derive(Deserialize, ToSchema)]
pub struct ConsentForm {
    pub state: String,
    pub csrf: String,
    /// `approve` or `deny`.
    pub decision: String,
}

#[utoipa::path(get, path = "/.well-known/oauth-protected-resource", tag = "discovery",
    responses((status = 200, description = "RFC 9728 metadata of the gateway", body = ProtectedResource)))]
fn protected_resource() {}

#[utoipa::path(get, path = "/.well-known/oauth-protected-resource/{resource_path}", tag = "discovery",
    params(("resource_path" = String, Path, description = "The protected resource's path, e.g. `mcp`")),
    responses((status = 200, body = ProtectedResource), (status = 404, description = "Not a resource of this server", body = OAuthError)))]
fn protected_resource_path() {}

#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "discovery",
    responses((status = 200, description = "RFC 8414 metadata", body = AuthorizationServer)))]
fn authorization_server() {}

#[utoipa::path(post, path = "/oauth/register", tag = "registration", request_body = RegistrationRequest,
    responses((status = 201, description = "Registered; the secret and registration access token are shown once", body = ClientResponse),
        (status = 400, description = "invalid_redirect_uri or invalid_client_metadata", body = OAuthError),
        (status = 413, body = OAuthError), (status = 415, body = OAuthError),
        (status = 429, body = OAuthError), (status = 503, description = "The client cap is reached", body = OAuthError)))]
fn register() {}

#[utoipa::path(post, path = "/register", tag = "registration", request_body = RegistrationRequest,
    responses((status = 201, body = ClientResponse), (status = 400, body = OAuthError), (status = 413, body = OAuthError),
        (status = 415, body = OAuthError), (status = 429, body = OAuthError), (status = 503, body = OAuthError)))]
fn register_alias() {}

#[utoipa::path(get, path = "/oauth/register/{client_id}", tag = "registration",
    params(("client_id" = String, Path)), security(("registration_access_token" = [])),
    responses((status = 200, body = ClientResponse), (status = 401, body = OAuthError)))]
fn read_client() {}

#[utoipa::path(put, path = "/oauth/register/{client_id}", tag = "registration", request_body = RegistrationRequest,
    params(("client_id" = String, Path)), security(("registration_access_token" = [])),
    responses((status = 200, body = ClientResponse), (status = 400, body = OAuthError), (status = 401, body = OAuthError),
        (status = 413, body = OAuthError), (status = 415, body = OAuthError)))]
fn update_client() {}

#[utoipa::path(delete, path = "/oauth/register/{client_id}", tag = "registration",
    params(("client_id" = String, Path)), security(("registration_access_token" = [])),
    responses((status = 204, description = "Deleted, with every token it held"), (status = 401, body = OAuthError)))]
fn delete_client() {}

#[utoipa::path(get, path = "/oauth/authorize", tag = "sign-in",
    params(("response_type" = String, Query), ("client_id" = String, Query), ("redirect_uri" = Option<String>, Query),
        ("state" = String, Query), ("code_challenge" = String, Query), ("code_challenge_method" = String, Query, description = "S256"),
        ("scope" = Option<String>, Query), ("resource" = Option<String>, Query)),
    responses((status = 200, description = "The consent page", content_type = "text/html"),
        (status = 302, description = "An error sent back to the client's redirect URI"),
        (status = 400, description = "An error page (never redirected)", content_type = "text/html"),
        (status = 429, body = OAuthError)))]
fn authorize() {}

#[utoipa::path(get, path = "/authorize", tag = "sign-in",
    params(("client_id" = String, Query)),
    responses((status = 200, description = "The consent page", content_type = "text/html"), (status = 302, description = "Redirect"),
        (status = 400, description = "Error page", content_type = "text/html"), (status = 429, body = OAuthError)))]
fn authorize_alias() {}

#[utoipa::path(post, path = "/oauth/consent", tag = "sign-in",
    request_body(content = ConsentForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 302, description = "To the identity provider, or access_denied to the client"),
        (status = 400, description = "Error page", content_type = "text/html"), (status = 403, description = "Error page", content_type = "text/html"),
        (status = 503, description = "Error page", content_type = "text/html")))]
fn consent() {}

#[utoipa::path(get, path = "/oauth/callback", tag = "sign-in",
    params(("state" = Option<String>, Query), ("code" = Option<String>, Query), ("error" = Option<String>, Query)),
    responses((status = 302, description = "Back to the client with a code (or an RFC error)"),
        (status = 400, description = "Unknown or used sign-in: an error page", content_type = "text/html"),
        (status = 503, description = "Error page", content_type = "text/html")))]
fn callback() {}

#[utoipa::path(get, path = "/oauth2callback", tag = "sign-in",
    params(("state" = Option<String>, Query), ("code" = Option<String>, Query)),
    responses((status = 302, description = "Redirect"), (status = 400, description = "Error page", content_type = "text/html"),
        (status = 503, description = "Error page", content_type = "text/html")))]
fn callback_alias() {}

#[utoipa::path(post, path = "/oauth/token", tag = "tokens",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = TokenResponse), (status = 400, body = OAuthError),
        (status = 401, description = "invalid_client, with WWW-Authenticate", body = OAuthError),
        (status = 413, body = OAuthError), (status = 429, body = OAuthError), (status = 503, body = OAuthError)))]
fn token() {}

#[utoipa::path(post, path = "/token", tag = "tokens",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = TokenResponse), (status = 400, body = OAuthError), (status = 401, body = OAuthError),
        (status = 413, body = OAuthError), (status = 429, body = OAuthError), (status = 503, body = OAuthError)))]
fn token_alias() {}

#[utoipa::path(post, path = "/oauth/revoke", tag = "tokens",
    request_body(content = TokenRequestByValue, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Revoked (or unknown, RFC 7009 §2.2)"), (status = 400, body = OAuthError),
        (status = 401, body = OAuthError), (status = 413, body = OAuthError), (status = 429, body = OAuthError),
        (status = 503, body = OAuthError)))]
fn revoke() {}

#[utoipa::path(post, path = "/oauth/introspect", tag = "tokens",
    request_body(content = TokenRequestByValue, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = IntrospectionResponse), (status = 400, body = OAuthError), (status = 401, body = OAuthError),
        (status = 413, body = OAuthError), (status = 429, body = OAuthError), (status = 503, body = OAuthError)))]
fn introspect() {}

#[utoipa::path(get, path = "/health/oauth", tag = "health",
    responses((status = 200, body = OAuthHealth), (status = 503, body = OAuthHealth)))]
fn health_oauth() {}

#[utoipa::path(get, path = "/health/live", tag = "health", responses((status = 200, body = Status)))]
fn health_live() {}

#[utoipa::path(get, path = "/health/ready", tag = "health", responses((status = 200, body = Status), (status = 503, body = Status)))]
fn health_ready() {}

#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
fn metrics() {}

#[utoipa::path(get, path = "/openapi.json", tag = "health", responses((status = 200, description = "This document")))]
fn openapi_json() {}

#[utoipa::path(get, path = "/dev/authorize", tag = "development provider",
    responses((status = 200, description = "Sign-in page", content_type = "text/html"), (status = 400, description = "Error page", content_type = "text/html")))]
fn dev_authorize_page() {}

#[utoipa::path(post, path = "/dev/authorize", tag = "development provider",
    responses((status = 302, description = "Back to Drawbridge's callback"), (status = 400, description = "Error page", content_type = "text/html")))]
fn dev_authorize_submit() {}

#[utoipa::path(post, path = "/dev/token", tag = "development provider",
    responses((status = 200, body = TokenResponse), (status = 400, body = OAuthError), (status = 401, body = OAuthError)))]
fn dev_token() {}

#[utoipa::path(get, path = "/dev/userinfo", tag = "development provider",
    responses((status = 200, description = "The demo user's claims"), (status = 401, body = OAuthError)))]
fn dev_userinfo() {}

#[utoipa::path(post, path = "/dev/revoke", tag = "development provider", responses((status = 200, description = "Revoked")))]
fn dev_revoke() {}

#[utoipa::path(post, path = "/mcp", tag = "gateway", security(("drawbridge_access_token" = [])),
    responses((status = 200, description = "The upstream MCP server's answer, streamed (JSON or text/event-stream)"),
        (status = 401, description = "No, unknown, expired or revoked token; WWW-Authenticate names the resource metadata", body = OAuthError),
        (status = 403, description = "insufficient_scope (step-up)", body = OAuthError),
        (status = 502, description = "The MCP server is unreachable"), (status = 503, description = "No MCP server configured"),
        (status = 504, description = "The MCP server did not answer in time")))]
fn gateway_post() {}

#[utoipa::path(get, path = "/mcp", tag = "gateway", security(("drawbridge_access_token" = [])),
    responses((status = 200, description = "Streamed answer (e.g. an SSE stream)"), (status = 401, body = OAuthError),
        (status = 403, body = OAuthError), (status = 502, description = "Unreachable"), (status = 503, description = "Not configured"),
        (status = 504, description = "Timed out")))]
fn gateway_get() {}

#[utoipa::path(delete, path = "/mcp", tag = "gateway", security(("drawbridge_access_token" = [])),
    responses((status = 200, description = "Session ended upstream"), (status = 401, body = OAuthError), (status = 403, body = OAuthError),
        (status = 502, description = "Unreachable"), (status = 503, description = "Not configured"), (status = 504, description = "Timed out")))]
fn gateway_delete() {}

#[utoipa::path(post, path = "/mcp/{tail}", tag = "gateway", params(("tail" = String, Path, description = "Forwarded as is")),
    security(("drawbridge_access_token" = [])),
    responses((status = 200, description = "Streamed answer"), (status = 401, body = OAuthError), (status = 403, body = OAuthError),
        (status = 502, description = "Unreachable"), (status = 503, description = "Not configured"), (status = 504, description = "Timed out")))]
fn gateway_tail() {}
