//! `/admin/v1/clients`: list, inspect, revoke, disable and enable clients.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{failed, AdminIdentity, ApiError};
use crate::actors::registry::{ClientFilter, ClientView};
use crate::cimd::DocumentCache;
use crate::domain::{AuthMethod, ClientId, RedirectUri, ScopeSet};
use crate::http::{allow, AppState};
use crate::service::clients::admin;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/clients")
            .route(web::get().to(list_clients))
            .default_service(allow("GET")),
    )
    .service(
        web::resource("/clients/{client_id}")
            .route(web::get().to(get_client))
            .route(web::delete().to(revoke_client))
            .default_service(allow("GET, DELETE")),
    )
    .service(
        web::resource("/clients/{client_id}/disable")
            .route(web::post().to(disable_client))
            .default_service(allow("POST")),
    )
    .service(
        web::resource("/clients/{client_id}/enable")
            .route(web::post().to(enable_client))
            .default_service(allow("POST")),
    );
}

/// A client as operators see it: metadata and dates, never a secret.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "client_id": "mcp_Xb3kq9Zt0fWm1YcVn2LpHA", "client_name": "Claude", "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
    "grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "none", "scope": null,
    "created_at": 1764201600, "last_used_at": 1764205200, "expires_at": 1764291600, "expired": false, "disabled": false
}))]
pub struct AdminClient {
    #[schema(value_type = String)]
    pub client_id: ClientId,
    pub client_name: Option<String>,
    #[schema(value_type = Vec<String>)]
    pub redirect_uris: Vec<RedirectUri>,
    pub grant_types: Vec<String>,
    pub token_endpoint_auth_method: String,
    /// `native` or `web`.
    pub application_type: &'static str,
    #[schema(value_type = Option<String>)]
    pub scope: Option<ScopeSet>,
    /// Unix seconds.
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub expires_at: i64,
    pub expired: bool,
    pub disabled: bool,
    /// For a client whose `client_id` is its metadata document's URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<AdminClientDocument>,
}

/// A metadata-document client's document: when its metadata was taken and
/// what the cache holds now.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminClientDocument {
    /// The document's URL (the client's id).
    pub url: String,
    /// When the stored metadata was fetched (Unix seconds).
    pub fetched_at: i64,
    /// SHA-256 of the document's bytes (hex): a new value is a new version.
    pub sha256: String,
    /// `fresh` (used without fetching until `cached_until`), `stale`
    /// (fetched again at the next sign-in) or `absent` (not in this
    /// instance's cache, e.g. after a restart).
    pub cache: &'static str,
    pub cached_until: Option<i64>,
}

impl AdminClientDocument {
    fn of(v: &ClientView, now: i64, cache: &DocumentCache) -> Option<Self> {
        let state = v.document?;
        let cached = cache.peek(&v.client_id);
        Some(Self {
            url: v.client_id.to_string(),
            fetched_at: state.fetched_at,
            sha256: crate::crypto::hex(&state.digest),
            cache: match &cached {
                None => "absent",
                Some(c) if c.fresh_until > now => "fresh",
                Some(_) => "stale",
            },
            cached_until: cached.map(|c| c.fresh_until),
        })
    }
}

impl AdminClient {
    fn from_view(v: ClientView, now: i64, cache: &DocumentCache) -> Self {
        Self {
            document: AdminClientDocument::of(&v, now, cache),
            token_endpoint_auth_method: v.metadata.auth_method.as_str().to_owned(),
            application_type: v.metadata.application_type.as_str(),
            grant_types: v
                .metadata
                .grant_type_names()
                .iter()
                .map(|g| g.to_string())
                .collect(),
            client_name: v.metadata.client_name,
            redirect_uris: v.metadata.redirect_uris,
            scope: v.metadata.scope,
            expired: now >= v.expires_at,
            created_at: v.issued_at,
            last_used_at: v.last_used_at,
            expires_at: v.expires_at,
            disabled: v.disabled,
            client_id: v.client_id,
        }
    }
}

/// One client with the number of its live grants and tokens.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminClientDetail {
    #[serde(flatten)]
    pub client: AdminClient,
    pub live_grants: usize,
    pub live_tokens: usize,
}

/// A page of clients; pass `next_cursor` as `cursor` for the next page.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientList {
    pub clients: Vec<AdminClient>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClientQuery {
    /// Cursor from the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<u32>,
    /// Only clients whose name contains this (case-insensitive).
    pub name_contains: Option<String>,
    /// Only clients registered before this Unix time.
    pub created_before: Option<i64>,
    /// Only clients registered after this Unix time.
    pub created_after: Option<i64>,
    /// Only expired (`true`) or live (`false`) clients.
    pub expired: Option<bool>,
    /// Only clients with this token endpoint auth method.
    pub auth_method: Option<String>,
    /// Only clients known by their metadata document (`document`) or
    /// registered with dynamic client registration (`registered`).
    pub kind: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RevokeQuery {
    /// Also revoke the users' upstream (Google) refresh tokens.
    pub upstream: Option<bool>,
}

/// What a revocation removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedClient {
    #[schema(value_type = String)]
    pub client_id: ClientId,
    pub revoked_grants: usize,
}

#[utoipa::path(get, path = "/admin/v1/clients", tag = "admin: clients", params(ClientQuery),
    security(("admin_token" = [])),
    responses((status = 200, description = "A page of clients", body = ClientList),
        (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 429, body = ApiError)))]
pub async fn list_clients(
    admin: AdminIdentity,
    state: web::Data<AppState>,
    q: web::Query<ClientQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 500"));
    }
    let filter = q.filter()?;
    let after = q.cursor.clone();
    let page = admin::list_clients(&state, &admin, after, limit as usize, filter)
        .await
        .map_err(failed("list_clients"))?;
    let now = state.clock.now();
    let clients = page.clients.into_iter();
    Ok(HttpResponse::Ok().json(ClientList {
        clients: clients
            .map(|c| AdminClient::from_view(c, now, &state.cimd))
            .collect(),
        next_cursor: page.next,
    }))
}

impl ClientQuery {
    /// The listing's filters, or 400 for an unknown `auth_method`.
    fn filter(&self) -> Result<ClientFilter, ApiError> {
        let auth_method = match self.auth_method.as_deref() {
            None => None,
            Some(m) => Some(
                AuthMethod::ALL
                    .into_iter()
                    .find(|a| a.as_str() == m)
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "auth_method must be none, client_secret_post or client_secret_basic",
                        )
                    })?,
            ),
        };
        let document = match self.kind.as_deref() {
            None => None,
            Some("document") => Some(true),
            Some("registered") => Some(false),
            Some(_) => return Err(ApiError::bad_request("kind must be document or registered")),
        };
        Ok(ClientFilter {
            document,
            name_contains: self.name_contains.clone(),
            created_before: self.created_before,
            created_after: self.created_after,
            expired: self.expired,
            auth_method,
        })
    }
}

#[utoipa::path(get, path = "/admin/v1/clients/{client_id}", tag = "admin: clients",
    params(("client_id" = String, Path, description = "The client id: mcp_…, or a metadata document URL percent-encoded")), security(("admin_token" = [])),
    responses((status = 200, body = AdminClientDetail), (status = 401, body = ApiError), (status = 404, body = ApiError)))]
pub async fn get_client(
    admin: AdminIdentity,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let client_id = admin::named_client(&path).map_err(failed("get_client"))?;
    let detail = admin::client_detail(&state, &admin, &client_id)
        .await
        .map_err(failed("get_client"))?;
    Ok(HttpResponse::Ok().json(AdminClientDetail {
        client: AdminClient::from_view(detail.client, state.clock.now(), &state.cimd),
        live_grants: detail.live_grants,
        live_tokens: detail.live_tokens,
    }))
}

#[utoipa::path(delete, path = "/admin/v1/clients/{client_id}", tag = "admin: clients",
    params(("client_id" = String, Path, description = "The client id: mcp_…, or a metadata document URL percent-encoded"), RevokeQuery), security(("admin_token" = [])),
    responses((status = 200, description = "The client and every token it held are gone", body = RevokedClient),
        (status = 401, body = ApiError), (status = 404, body = ApiError)))]
pub async fn revoke_client(
    admin: AdminIdentity,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<RevokeQuery>,
) -> Result<HttpResponse, ApiError> {
    let client_id = admin::named_client(&path).map_err(failed("revoke_client"))?;
    let upstream = q.upstream.unwrap_or(false);
    let revoked_grants = admin::remove_client(&state, &admin, &client_id, upstream)
        .await
        .map_err(failed("revoke_client"))?;
    Ok(HttpResponse::Ok().json(RevokedClient {
        client_id,
        revoked_grants,
    }))
}

async fn set_disabled(
    admin: AdminIdentity,
    state: web::Data<AppState>,
    client_id: String,
    disabled: bool,
) -> Result<HttpResponse, ApiError> {
    let operation = if disabled {
        "disable_client"
    } else {
        "enable_client"
    };
    let client_id = admin::named_client(&client_id).map_err(failed(operation))?;
    let view = admin::set_disabled(&state, &admin, &client_id, disabled)
        .await
        .map_err(failed(operation))?;
    Ok(HttpResponse::Ok().json(AdminClient::from_view(view, state.clock.now(), &state.cimd)))
}
#[utoipa::path(post, path = "/admin/v1/clients/{client_id}/disable", tag = "admin: clients",
    params(("client_id" = String, Path, description = "The client id: mcp_…, or a metadata document URL percent-encoded")), security(("admin_token" = [])),
    responses((status = 200, description = "The client can no longer authenticate or sign in", body = AdminClient),
        (status = 401, body = ApiError), (status = 404, body = ApiError)))]
pub async fn disable_client(
    admin: AdminIdentity,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    set_disabled(admin, state, path.into_inner(), true).await
}

#[utoipa::path(post, path = "/admin/v1/clients/{client_id}/enable", tag = "admin: clients",
    params(("client_id" = String, Path, description = "The client id: mcp_…, or a metadata document URL percent-encoded")), security(("admin_token" = [])),
    responses((status = 200, body = AdminClient), (status = 401, body = ApiError), (status = 404, body = ApiError)))]
pub async fn enable_client(
    admin: AdminIdentity,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    set_disabled(admin, state, path.into_inner(), false).await
}
