//! The user's session at the upstream (Google): which upstream client it
//! uses ([`upstream_credentials`]), its access token kept fresh (refreshed
//! shortly before it expires, at most one refresh per user at a time), and
//! the gateway's way from a Drawbridge access token to that fresh upstream
//! token ([`check_access`], then [`upstream_session`]).

mod access;
mod credentials;

pub use access::{
    check_access, upstream_session, Access, AccessRefusal, SessionRefusal, UpstreamSession,
};
pub use credentials::{upstream_credentials, CredentialsError};

use std::sync::Arc;

use crate::actors::lease::Lease;
use crate::actors::vault::{LoadUserCredentials, StoreUserCredentials, UserCredentials, UserRef};
use crate::domain::Refusal;
use crate::service::Services;
use crate::upstream::{Credentials, UpstreamError};

/// Refresh this long before the upstream access token expires.
const MARGIN_SECONDS: i64 = 60;
/// Several instances on one database: how long one holds a user's upstream
/// refresh (longer than an upstream request may take), and how long another
/// waits for it before answering 503.
const LEASE_SECONDS: i64 = 30;
const WAIT_STEP: std::time::Duration = std::time::Duration::from_millis(100);
const WAIT_STEPS: usize = 150;

/// Why the upstream token could not be made fresh.
#[derive(Debug)]
pub enum Freshness {
    /// The upstream refused the refresh token (access withdrawn): sign in again.
    Revoked,
    /// The upstream or storage is unavailable: try again later.
    Unavailable,
    /// The access policy no longer admits the user (removed from a list
    /// since they signed in); the email is for the audit record.
    NotAllowed {
        refusal: Refusal,
        email: Option<String>,
    },
}

/// The access policy's verdict on a stored user.
fn still_admitted(state: &Services, user: &UserCredentials) -> Result<(), Freshness> {
    state
        .access
        .check_stored(
            user.email.as_deref(),
            user.email_verified,
            user.tokens.id_token.as_deref(),
        )
        .map_err(|refusal| Freshness::NotAllowed {
            refusal,
            email: user.verified_email().map(str::to_owned),
        })
}

/// Makes sure the user is still admitted by the access policy (checked on
/// the record loaded anyway: no extra read) and that their stored upstream
/// access token is not about to expire, refreshing it at the upstream when
/// it is; answers the user's credentials with that fresh token.
pub async fn ensure_fresh(
    state: &Services,
    uid: &str,
    creds: &Credentials,
) -> Result<UserCredentials, Freshness> {
    let load = || {
        state
            .vault
            .read(LoadUserCredentials(UserRef::Id(uid.to_owned())))
    };
    let stale = |expires_at: Option<i64>| {
        expires_at.is_some_and(|e| e - MARGIN_SECONDS <= state.clock.now())
    };
    let current = load()
        .await
        .map_err(|_| Freshness::Unavailable)?
        .map_err(|_| Freshness::Unavailable)?;
    let Some(current) = current else {
        return Err(Freshness::Revoked);
    };
    still_admitted(state, &current)?;
    if !stale(current.tokens.expires_at) {
        return Ok(current);
    }
    let lock = state.flights.lock_for(uid);
    let _guard = lock.lock().await;
    // Someone else may have refreshed while we waited.
    let Some(mut current) = load()
        .await
        .map_err(|_| Freshness::Unavailable)?
        .map_err(|_| Freshness::Unavailable)?
    else {
        return Err(Freshness::Revoked);
    };
    if !stale(current.tokens.expires_at) {
        return Ok(current);
    }
    // Across instances sharing the database: one alone refreshes; the
    // others wait for the token it stores.
    let lease = match &state.leases {
        None => None,
        Some(trees) => {
            let lease = Arc::new(Lease::new(
                trees.clone(),
                format!("upstream-refresh/{uid}"),
                LEASE_SECONDS,
            ));
            let mut steps = 0;
            loop {
                let taking = lease.clone();
                let now = state.clock.now();
                let taken = actix_web::rt::task::spawn_blocking(move || taking.acquire(now))
                    .await
                    .map_err(|_| Freshness::Unavailable)?
                    .map_err(|_| Freshness::Unavailable)?;
                if taken {
                    break Some(lease);
                }
                steps += 1;
                if steps > WAIT_STEPS {
                    return Err(Freshness::Unavailable);
                }
                actix_web::rt::time::sleep(WAIT_STEP).await;
                let Some(now_stored) = load()
                    .await
                    .map_err(|_| Freshness::Unavailable)?
                    .map_err(|_| Freshness::Unavailable)?
                else {
                    return Err(Freshness::Revoked);
                };
                if !stale(now_stored.tokens.expires_at) {
                    return Ok(now_stored);
                }
            }
        }
    };
    // Taken: the token may have been refreshed just before.
    if lease.is_some() {
        match load()
            .await
            .map_err(|_| Freshness::Unavailable)?
            .map_err(|_| Freshness::Unavailable)?
        {
            Some(fresh) if !stale(fresh.tokens.expires_at) => {
                release(lease).await;
                return Ok(fresh);
            }
            Some(stored) => current = stored,
            None => {
                release(lease).await;
                return Err(Freshness::Revoked);
            }
        }
    }
    let refreshed = refresh_upstream(state, creds, current).await;
    release(lease).await;
    refreshed
}

/// Hands a user's refresh lease on (several instances on one database).
async fn release(lease: Option<Arc<Lease>>) {
    if let Some(lease) = lease {
        let _ = actix_web::rt::task::spawn_blocking(move || lease.release()).await;
    }
}

/// Refreshes `current`'s upstream token at the upstream and stores it.
async fn refresh_upstream(
    state: &Services,
    creds: &Credentials,
    mut current: UserCredentials,
) -> Result<UserCredentials, Freshness> {
    let Some(refresh_token) = current.tokens.refresh_token.clone() else {
        return Err(Freshness::Revoked);
    };
    let fresh = match state.upstream.refresh(creds, &refresh_token).await {
        Ok(t) => t,
        Err(e @ UpstreamError::Rejected { .. }) if e.is_invalid_grant() => {
            return Err(Freshness::Revoked)
        }
        Err(e) => {
            tracing::warn!(error = %e, "refreshing the upstream token failed");
            return Err(Freshness::Unavailable);
        }
    };
    let now = state.clock.now();
    current.tokens.access_token = fresh.access_token;
    current.tokens.expires_at = fresh.expires_in.map(|s| now + s as i64);
    if let Some(rt) = fresh.refresh_token {
        current.tokens.refresh_token = Some(rt);
    }
    if fresh.id_token.is_some() {
        current.tokens.id_token = fresh.id_token;
    }
    current.updated_at = now;
    match state
        .vault
        .send(StoreUserCredentials(current.clone()))
        .await
    {
        Ok(Ok(_)) => {
            tracing::info!("Token refreshed successfully");
            Ok(current)
        }
        _ => Err(Freshness::Unavailable),
    }
}

/// How the user `uid` is named in a record (their verified email, else
/// their subject), or `None` when they cannot be loaded.
pub async fn user_label(services: &Services, uid: &str) -> Option<String> {
    let load = LoadUserCredentials(UserRef::Id(uid.to_owned()));
    match services.vault.read(load).await {
        Ok(Ok(Some(user))) => Some(user.label().to_owned()),
        _ => None,
    }
}
