//! What an operator does to clients, users and tokens through the admin
//! API. Each operation that succeeds is audited (`admin_action`) with the
//! operator's address; refusals are the caller's to log.

use std::collections::HashMap;

use super::forget_upstream_secret;
use crate::actors::registry::{
    ClientFilter, ClientPage, ClientView, InspectClient, ListClients, ReadTimeline, RemoveClient,
    SetClientDisabled,
};
use crate::actors::token_broker::{
    ClientSubjects, ClientTokenCounts, GrantsPerSubject, RevokeClientGrants, RevokeGrant,
    RevokeSubjectGrants, RevokeToken, TokenKind,
};
use crate::actors::vault::{
    DeleteUserCredentials, ListUsers, LoadUsersByVerifiedEmail, UserCredentials, UserPage, UserRef,
};
use crate::audit::AuditEvent;
use crate::domain::timeline::Timeline;
use crate::domain::{ClientId, SecretToken};
use crate::service::session::upstream_credentials;
use crate::service::tokens::end_upstream_session;
use crate::service::{timeline, Answered, ServiceError, Services};

/// The operator who acts (a holder of the admin token) and from where.
#[derive(Debug, Clone)]
pub struct Operator {
    pub ip: String,
}

impl Operator {
    /// Emits the `admin_action` audit record of a successful action.
    pub fn audit(&self, action: &str, target: &str) {
        AuditEvent::AdminAction {
            admin: "admin-token",
            ip: &self.ip,
            action,
            target,
            success: true,
        }
        .emit();
    }
}

/// A page of clients, `limit` at most, after the cursor `after`.
pub async fn list_clients(
    services: &Services,
    operator: &Operator,
    after: Option<String>,
    limit: usize,
    filter: ClientFilter,
) -> Result<ClientPage, ServiceError> {
    let now = services.clock.now();
    let msg = ListClients {
        after,
        limit,
        filter,
        now,
    };
    let page = services.registry.send(msg).await.answered()?;
    operator.audit("list_clients", "clients");
    Ok(page)
}

/// One client, expired or not, with its live grants and tokens.
#[derive(Debug)]
pub struct ClientDetail {
    pub client: ClientView,
    pub live_grants: usize,
    pub live_tokens: usize,
}

/// The client an operator names: an id of this server's shape, else
/// `not_found` (as for an id nobody holds).
pub fn named_client(raw: &str) -> Result<ClientId, ServiceError> {
    ClientId::parse(raw).ok_or_else(|| ServiceError::not_found(format!("no client {raw}")))
}

pub async fn client_detail(
    services: &Services,
    operator: &Operator,
    client_id: &ClientId,
) -> Result<ClientDetail, ServiceError> {
    let client = inspect(services, client_id).await?;
    let counts = ClientTokenCounts {
        client_id: client_id.clone(),
    };
    let (live_grants, live_tokens) = services.broker.send(counts).await.answered()?;
    operator.audit("get_client", client_id);
    Ok(ClientDetail {
        client,
        live_grants,
        live_tokens,
    })
}

/// A client by id, expired or not; `not_found` when there is none.
async fn inspect(services: &Services, client_id: &ClientId) -> Result<ClientView, ServiceError> {
    let msg = InspectClient {
        client_id: client_id.clone(),
    };
    services
        .registry
        .read(msg)
        .await
        .answered()?
        .ok_or_else(|| ServiceError::not_found(format!("no client {client_id}")))
}

/// Removes a client with every grant it holds and its custom upstream
/// client secret; with `upstream`, its users' upstream sessions end too.
/// Answers how many grants were revoked.
pub async fn remove_client(
    services: &Services,
    operator: &Operator,
    client_id: &ClientId,
    upstream: bool,
) -> Result<usize, ServiceError> {
    let client = inspect(services, client_id).await?;
    if upstream {
        end_upstream_sessions_of(services, &client).await;
    }
    let grants = RevokeClientGrants {
        client_ids: vec![client_id.clone()],
    };
    let revoked = services.broker.send(grants).await.answered()?;
    let remove = RemoveClient {
        client_id: client_id.clone(),
    };
    services.registry.send(remove).await.answered()?;
    forget_upstream_secret(services, client_id).await;
    operator.audit("revoke_client", client_id);
    Ok(revoked)
}

/// Ends at the upstream the sessions of the users signed in through
/// `client`, and forgets their upstream credentials (their other clients
/// will have to sign in again: upstream tokens are per user). Best effort,
/// each failure logged.
async fn end_upstream_sessions_of(services: &Services, client: &ClientView) {
    let msg = ClientSubjects {
        client_id: client.client_id.clone(),
    };
    let users = match services.broker.send(msg).await.answered() {
        Ok(users) => users,
        Err(e) => {
            tracing::warn!(client_id = %client.client_id, error = %e, "the client's users could not be listed; their upstream sessions stay");
            return;
        }
    };
    let creds = match upstream_credentials(services, None, client).await {
        Ok(creds) => creds,
        Err(e) => {
            tracing::warn!(client_id = %client.client_id, error = %e, "no upstream client to revoke with; the users' upstream sessions stay");
            return;
        }
    };
    for uid in users {
        end_upstream_session(services, &creds, &uid).await;
    }
}

/// Disables or enables a client; answers it as it now is.
pub async fn set_disabled(
    services: &Services,
    operator: &Operator,
    client_id: &ClientId,
    disabled: bool,
) -> Result<ClientView, ServiceError> {
    let msg = SetClientDisabled {
        client_id: client_id.clone(),
        disabled,
    };
    if !services.registry.send(msg).await.answered()? {
        return Err(ServiceError::not_found(format!("no client {client_id}")));
    }
    let action = if disabled {
        "disable_client"
    } else {
        "enable_client"
    };
    operator.audit(action, client_id);
    inspect(services, client_id).await
}

/// A page of users with stored upstream credentials, and how many grants
/// each user (by the Vault's id) holds.
pub async fn list_users(
    services: &Services,
    operator: &Operator,
    after: Option<Vec<u8>>,
    limit: usize,
) -> Result<(UserPage, HashMap<String, usize>), ServiceError> {
    let page = services
        .vault
        .send(ListUsers { after, limit })
        .await
        .answered()?;
    let grants = services.broker.send(GrantsPerSubject).await.answered()?;
    operator.audit("list_users", "users");
    Ok((page, grants))
}

/// What revoking a user removed.
#[derive(Debug, Default)]
pub struct RevokedUsers {
    /// Users with the email (one per issuer and subject).
    pub users: usize,
    pub revoked_grants: usize,
    pub credentials_deleted: bool,
}

/// Every user whose verified email is `email` loses every grant across all
/// clients and their upstream credentials (with `upstream`, revoked at the
/// upstream first). A user whose email is unverified is untouched.
pub async fn revoke_user(
    services: &Services,
    operator: &Operator,
    email: &str,
    upstream: bool,
) -> Result<RevokedUsers, ServiceError> {
    let users = users_with_email(services, email).await?;
    let mut revoked = RevokedUsers {
        users: users.len(),
        ..RevokedUsers::default()
    };
    for user in &users {
        if upstream {
            revoke_at_upstream(services, user).await;
        }
        revoked.revoked_grants += revoke_grants_of(services, &user.uid).await?;
        let delete = DeleteUserCredentials(UserRef::Id(user.uid.clone()));
        revoked.credentials_deleted |= services.vault.send(delete).await.answered()?;
        operator.audit("revoke_user", &user.sub);
    }
    Ok(revoked)
}

/// Revokes the user's upstream refresh token with the operator's upstream
/// client. Best effort, a failure logged.
async fn revoke_at_upstream(services: &Services, user: &UserCredentials) {
    let creds = services.upstream.default_credentials();
    if let (Some(rt), Some(creds)) = (&user.tokens.refresh_token, creds) {
        if let Err(e) = services.upstream.revoke(creds, rt).await {
            tracing::warn!(error = %e, "upstream revocation failed");
        }
    }
}

/// Every user whose verified email is `email` (never one whose email is
/// unverified); `not_found` when there is none.
async fn users_with_email(
    services: &Services,
    email: &str,
) -> Result<Vec<UserCredentials>, ServiceError> {
    let msg = LoadUsersByVerifiedEmail(email.to_owned());
    let users = services.vault.read(msg).await.answered()?;
    if users.is_empty() {
        return Err(ServiceError::not_found(
            "no stored credentials for this verified email",
        ));
    }
    Ok(users)
}

/// Revokes every grant (and so every token) of the user `uid`.
async fn revoke_grants_of(services: &Services, uid: &str) -> Result<usize, ServiceError> {
    let msg = RevokeSubjectGrants {
        user: uid.to_owned(),
    };
    services.broker.send(msg).await.answered()
}

/// Which tokens an operator revokes.
#[derive(Debug)]
pub enum RevokeTarget {
    /// One token (a refresh token takes its family).
    Token(SecretToken),
    /// A grant (one sign-in) and every token it issued.
    Grant(String),
    /// Every token of a client (the client stays registered).
    Client(String),
    /// Every token of every user with this verified email (credentials stay).
    Email(String),
}

/// What an operator's revocation removed.
#[derive(Debug)]
pub struct RevokedTokens {
    /// Grants (families) revoked; a single access token counts as 0.
    pub revoked_grants: usize,
    pub revoked: bool,
}

pub async fn revoke_tokens(
    services: &Services,
    operator: &Operator,
    target: RevokeTarget,
) -> Result<RevokedTokens, ServiceError> {
    let (audited, revoked_grants, revoked) = match target {
        RevokeTarget::Token(token) => {
            let msg = RevokeToken {
                token,
                client_id: None,
                now: services.clock.now(),
            };
            match services.broker.send(msg).await.answered()? {
                Some(r) => (r.grant_id, usize::from(r.kind == TokenKind::Refresh), true),
                None => ("unknown token".to_owned(), 0, false),
            }
        }
        RevokeTarget::Grant(grant_id) => {
            let msg = RevokeGrant {
                grant_id: grant_id.clone(),
            };
            let n = services.broker.send(msg).await.answered()?;
            (grant_id, 1, n > 0)
        }
        RevokeTarget::Client(raw) => match ClientId::parse(&raw) {
            Some(client_id) => {
                let msg = RevokeClientGrants {
                    client_ids: vec![client_id],
                };
                let n = services.broker.send(msg).await.answered()?;
                (raw, n, n > 0)
            }
            // No client has an id of another shape: nothing to revoke.
            None => (raw, 0, false),
        },
        RevokeTarget::Email(email) => {
            let users = users_with_email(services, &email).await?;
            let mut n = 0;
            for user in &users {
                n += revoke_grants_of(services, &user.uid).await?;
            }
            let subs: Vec<&str> = users.iter().map(|u| u.sub.as_str()).collect();
            (subs.join(","), n, n > 0)
        }
    };
    operator.audit("revoke_tokens", &audited);
    Ok(RevokedTokens {
        revoked_grants,
        revoked,
    })
}

/// A client's timeline for an operator; `not_found` for a client not
/// stored.
pub async fn client_timeline(
    services: &Services,
    operator: &Operator,
    client_id: &ClientId,
) -> Result<Timeline, ServiceError> {
    let msg = ReadTimeline {
        client_id: client_id.clone(),
        now: timeline::now(services),
        keep_seconds: timeline::keep_seconds(services),
    };
    let timeline = services
        .registry
        .send(msg)
        .await
        .answered()?
        .ok_or_else(|| ServiceError::not_found(format!("no client {client_id}")))?;
    operator.audit("client_timeline", client_id);
    Ok(timeline)
}
