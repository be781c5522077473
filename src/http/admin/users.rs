//! `/admin/v1/users` and `/admin/v1/tokens/revoke`.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{failed, AdminIdentity, ApiError};
use crate::domain::SecretToken;
use crate::http::{allow, AppState};
use crate::service::clients::admin::{self, RevokeTarget};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/users")
            .route(web::get().to(list_users))
            .default_service(allow("GET")),
    )
    .service(
        web::resource("/users/{email}")
            .route(web::delete().to(revoke_user))
            .default_service(allow("DELETE")),
    )
    .service(
        web::resource("/tokens/revoke")
            .route(web::post().to(revoke_tokens))
            .default_service(allow("POST")),
    );
}

/// A user with stored upstream credentials.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"issuer": "https://accounts.google.com", "sub": "109876543210", "email": "ada@example.com", "email_verified": true, "grants": 2, "has_refresh_token": true, "last_refresh": 1764205200}))]
pub struct AdminUser {
    /// The issuer that vouched for the subject (empty: recorded before
    /// issuers were, until the user signs in again).
    pub issuer: String,
    /// The upstream subject.
    pub sub: String,
    pub email: Option<String>,
    /// Whether the issuer verified the email; an unverified email never
    /// names the user (revoke by email, gateway header, introspection).
    pub email_verified: bool,
    /// Live sign-ins (grants) across clients.
    pub grants: usize,
    pub has_refresh_token: bool,
    /// When the upstream tokens were last written (Unix seconds).
    pub last_refresh: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<AdminUser>,
    /// Records the vault could not open (left in place).
    pub unreadable: usize,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/admin/v1/users", tag = "admin: users", params(UserQuery), security(("admin_token" = [])),
    responses((status = 200, body = UserList), (status = 400, body = ApiError), (status = 401, body = ApiError)))]
pub async fn list_users(
    admin: AdminIdentity,
    state: web::Data<AppState>,
    q: web::Query<UserQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 500"));
    }
    let after = q.cursor.as_ref().map(|c| c.clone().into_bytes());
    let (page, grants) = admin::list_users(&state, &admin, after, limit as usize)
        .await
        .map_err(failed("list_users"))?;
    let full = page.users.len() + page.unreadable.len() == limit as usize;
    let users = page.users.into_iter().map(|u| AdminUser {
        grants: grants.get(&u.uid).copied().unwrap_or(0),
        issuer: u.issuer,
        sub: u.sub,
        email: u.email,
        email_verified: u.email_verified,
        has_refresh_token: u.has_refresh_token,
        last_refresh: u.updated_at,
    });
    Ok(HttpResponse::Ok().json(UserList {
        unreadable: page.unreadable.len(),
        next_cursor: (page.next.filter(|_| full)).map(|n| String::from_utf8_lossy(&n).into_owned()),
        users: users.collect(),
    }))
}

/// What revoking a user removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedUser {
    pub email: String,
    /// Users with this verified email (one per issuer and subject).
    pub users: usize,
    pub revoked_grants: usize,
    pub credentials_deleted: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RevokeUserQuery {
    /// Also revoke the user's refresh token at the upstream (Google).
    pub upstream: Option<bool>,
}

/// The source document's `delete_credentials`: every token of every user
/// with this verified email, across all clients, is dead at once, and their
/// upstream tokens are gone. A user whose email is unverified is untouched.
#[utoipa::path(delete, path = "/admin/v1/users/{email}", tag = "admin: users",
    params(("email" = String, Path, description = "The user's verified email"), RevokeUserQuery), security(("admin_token" = [])),
    responses((status = 200, body = RevokedUser), (status = 401, body = ApiError), (status = 404, body = ApiError)))]
pub async fn revoke_user(
    admin: AdminIdentity,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<RevokeUserQuery>,
) -> Result<HttpResponse, ApiError> {
    let email = path.into_inner();
    let upstream = q.upstream.unwrap_or(false);
    let revoked = admin::revoke_user(&state, &admin, &email, upstream)
        .await
        .map_err(failed("revoke_user"))?;
    Ok(HttpResponse::Ok().json(RevokedUser {
        email,
        users: revoked.users,
        revoked_grants: revoked.revoked_grants,
        credentials_deleted: revoked.credentials_deleted,
    }))
}

/// Which tokens to revoke: exactly one of the fields.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"client_id": "mcp_Xb3kq9Zt0fWm1YcVn2LpHA"}))]
pub struct RevokeTokens {
    /// A token value (`mcp_at_…` or `mcp_rt_…`; a refresh token takes its family).
    pub token: Option<String>,
    /// A grant (one sign-in) and every token it issued.
    pub grant_id: Option<String>,
    /// Every token of a client (the client stays registered).
    pub client_id: Option<String>,
    /// Every token of every user with this verified email, across clients
    /// (credentials stay).
    pub email: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedTokens {
    /// Grants (families) revoked; a single access token counts as 0.
    pub revoked_grants: usize,
    pub revoked: bool,
}

#[utoipa::path(post, path = "/admin/v1/tokens/revoke", tag = "admin: tokens", request_body = RevokeTokens, security(("admin_token" = [])),
    responses((status = 200, body = RevokedTokens), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 404, body = ApiError)))]
pub async fn revoke_tokens(
    admin: AdminIdentity,
    state: web::Data<AppState>,
    body: web::Json<RevokeTokens>,
) -> Result<HttpResponse, ApiError> {
    let target = body.into_inner().target()?;
    let revoked = admin::revoke_tokens(&state, &admin, target)
        .await
        .map_err(failed("revoke_tokens"))?;
    Ok(HttpResponse::Ok().json(RevokedTokens {
        revoked_grants: revoked.revoked_grants,
        revoked: revoked.revoked,
    }))
}

impl RevokeTokens {
    /// The one target named, or 400 when not exactly one is.
    fn target(self) -> Result<RevokeTarget, ApiError> {
        let target = match (self.token, self.grant_id, self.client_id, self.email) {
            (Some(token), None, None, None) => RevokeTarget::Token(SecretToken::presented(token)),
            (None, Some(grant_id), None, None) => RevokeTarget::Grant(grant_id),
            (None, None, Some(client_id), None) => RevokeTarget::Client(client_id),
            (None, None, None, Some(email)) => RevokeTarget::Email(email),
            _ => {
                return Err(ApiError::bad_request(
                    "give exactly one of token, grant_id, client_id, email",
                ))
            }
        };
        Ok(target)
    }
}
