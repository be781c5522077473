//! `/admin/v1/users` and `/admin/v1/tokens/revoke`.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{unavailable, AdminIdentity, ApiError};
use crate::actors::registry::ClientView;
use crate::actors::token_broker::{
    ClientSubjects, GrantsPerSubject, RevokeClientGrants, RevokeGrant, RevokeSubjectGrants,
    RevokeToken,
};
use crate::actors::vault::{
    DeleteUserCredentials, ListUsers, LoadUserCredentials, LoadUsersByVerifiedEmail,
    UserCredentials, UserRef,
};
use crate::domain::SecretToken;
use crate::http::oauth::upstream_credentials;
use crate::http::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/users", web::get().to(list_users))
        .route("/users/{email}", web::delete().to(revoke_user))
        .route("/tokens/revoke", web::post().to(revoke_tokens));
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
    let page = state
        .vault
        .send(ListUsers {
            after,
            limit: limit as usize,
        })
        .await
        .map_err(unavailable)?
        .map_err(unavailable)?;
    let grants = state
        .broker
        .send(GrantsPerSubject)
        .await
        .map_err(unavailable)?
        .map_err(unavailable)?;
    admin.audit("list_users", "users");
    Ok(HttpResponse::Ok().json(UserList {
        unreadable: page.unreadable.len(),
        next_cursor: page
            .next
            .filter(|_| page.users.len() + page.unreadable.len() == limit as usize)
            .map(|n| String::from_utf8_lossy(&n).into_owned()),
        users: page
            .users
            .into_iter()
            .map(|u| AdminUser {
                grants: grants.get(&u.uid).copied().unwrap_or(0),
                issuer: u.issuer,
                sub: u.sub,
                email: u.email,
                email_verified: u.email_verified,
                has_refresh_token: u.has_refresh_token,
                last_refresh: u.updated_at,
            })
            .collect(),
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

/// Every user whose verified email is `email` (never one whose email is
/// unverified); 404 when there is none.
async fn users_with_email(state: &AppState, email: &str) -> Result<Vec<UserCredentials>, ApiError> {
    let users = state
        .vault
        .read(LoadUsersByVerifiedEmail(email.to_owned()))
        .await
        .map_err(unavailable)?
        .map_err(unavailable)?;
    if users.is_empty() {
        return Err(ApiError::not_found(
            "no stored credentials for this verified email",
        ));
    }
    Ok(users)
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
    let users = users_with_email(&state, &email).await?;
    let mut revoked_grants = 0;
    let mut credentials_deleted = false;
    for user in &users {
        if q.upstream.unwrap_or(false) {
            if let (Some(rt), Some(creds)) = (
                &user.tokens.refresh_token,
                state.upstream.default_credentials(),
            ) {
                if let Err(e) = state.upstream.revoke(creds, rt).await {
                    tracing::warn!(error = %e, "upstream revocation failed");
                }
            }
        }
        revoked_grants += revoke_grants_of(&state, &user.uid).await?;
        credentials_deleted |= state
            .vault
            .send(DeleteUserCredentials(UserRef::Id(user.uid.clone())))
            .await
            .map_err(unavailable)?
            .map_err(unavailable)?;
        admin.audit("revoke_user", &user.sub);
    }
    Ok(HttpResponse::Ok().json(RevokedUser {
        email,
        users: users.len(),
        revoked_grants,
        credentials_deleted,
    }))
}

/// Revokes every grant (and so every token) of the user `uid`.
async fn revoke_grants_of(state: &AppState, uid: &str) -> Result<usize, ApiError> {
    state
        .broker
        .send(RevokeSubjectGrants {
            user: uid.to_owned(),
        })
        .await
        .map_err(unavailable)?
        .map_err(unavailable)
}

/// Revokes at the upstream the refresh tokens of the users signed in
/// through `client`, and forgets their upstream credentials (their other
/// clients will have to sign in again: upstream tokens are per user).
pub async fn revoke_upstream_for_client(state: &AppState, client: &ClientView) {
    let Ok(Ok(subs)) = state
        .broker
        .send(ClientSubjects {
            client_id: client.client_id.clone(),
        })
        .await
    else {
        return;
    };
    let Ok(creds) = upstream_credentials(state, None, client).await else {
        return;
    };
    for uid in subs {
        let user = state
            .vault
            .read(LoadUserCredentials(UserRef::Id(uid.clone())))
            .await
            .ok()
            .and_then(|r| r.ok())
            .flatten();
        if let Some(rt) = user.and_then(|u| u.tokens.refresh_token) {
            if let Err(e) = state.upstream.revoke(&creds, &rt).await {
                tracing::warn!(error = %e, "upstream revocation failed");
            }
        }
        let _ = state
            .vault
            .send(DeleteUserCredentials(UserRef::Id(uid)))
            .await;
    }
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
    let b = body.into_inner();
    let given = [
        b.token.is_some(),
        b.grant_id.is_some(),
        b.client_id.is_some(),
        b.email.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if given != 1 {
        return Err(ApiError::bad_request(
            "give exactly one of token, grant_id, client_id, email",
        ));
    }
    let (target, revoked_grants, revoked) = if let Some(token) = b.token {
        let msg = RevokeToken {
            token: SecretToken::presented(token),
            client_id: None,
            now: state.clock.now(),
        };
        let record = state
            .broker
            .send(msg)
            .await
            .map_err(unavailable)?
            .map_err(unavailable)?;
        let families = usize::from(
            record
                .as_ref()
                .is_some_and(|r| r.kind == crate::actors::token_broker::TokenKind::Refresh),
        );
        let revoked = record.is_some();
        (
            record
                .map(|r| r.grant_id)
                .unwrap_or_else(|| "unknown token".into()),
            families,
            revoked,
        )
    } else if let Some(grant_id) = b.grant_id {
        let n = state
            .broker
            .send(RevokeGrant {
                grant_id: grant_id.clone(),
            })
            .await
            .map_err(unavailable)?
            .map_err(unavailable)?;
        (grant_id, 1, n > 0)
    } else if let Some(client_id) = b.client_id {
        let n = state
            .broker
            .send(RevokeClientGrants {
                client_ids: vec![client_id.clone()],
            })
            .await
            .map_err(unavailable)?
            .map_err(unavailable)?;
        (client_id, n, n > 0)
    } else {
        let email = b.email.unwrap_or_default();
        let users = users_with_email(&state, &email).await?;
        let mut n = 0;
        for user in &users {
            n += revoke_grants_of(&state, &user.uid).await?;
        }
        let subs: Vec<&str> = users.iter().map(|u| u.sub.as_str()).collect();
        (subs.join(","), n, n > 0)
    };
    admin.audit("revoke_tokens", &target);
    Ok(HttpResponse::Ok().json(RevokedTokens {
        revoked_grants,
        revoked,
    }))
}
