//! The gateway's way from a Drawbridge access token to the user's fresh
//! upstream token: the token must be a live access token for this resource
//! with the gateway's scopes, and its client must still be live (checked at
//! every use: a token of a disabled or expired client stops working at
//! once, as a revoked one does).

use super::{ensure_fresh, upstream_credentials, CredentialsError, Freshness};
use crate::actors::registry::{ClientView, GetClient};
use crate::actors::token_broker::{IntrospectToken, TokenKind, TokenRecord};
use crate::domain::{ClientId, Refusal, SecretToken};
use crate::service::access::{record_refusal, Stage};
use crate::service::{timeline, Services};

/// A Drawbridge access token that may reach the gateway: its record and
/// its client.
#[derive(Debug)]
pub struct Access {
    pub record: TokenRecord,
    pub client: ClientView,
}

/// Why a request may not pass the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessRefusal {
    /// No bearer token was presented.
    NoToken,
    /// The token is unknown, expired, revoked, or not an access token.
    UnknownToken,
    /// The token was issued for another protected resource.
    OtherResource,
    /// The token's client is disabled, expired or no longer registered.
    ClientGone,
    /// The token lacks a scope the gateway requires.
    InsufficientScope,
    /// The token or its client could not be looked up now.
    Unavailable,
}

/// The user's upstream session, as a forwarded request carries it (no
/// `Debug`: it holds the upstream token).
pub struct UpstreamSession {
    /// The user's fresh upstream access token.
    pub access_token: String,
    /// The user as the MCP server may name them: the verified email, else
    /// the upstream subject.
    pub user: String,
    /// The Drawbridge client the request comes through.
    pub client_id: ClientId,
}

/// Why the user's upstream token cannot be had.
#[derive(Debug)]
pub enum SessionRefusal {
    /// The upstream client could not be named.
    Credentials(CredentialsError),
    /// The upstream withdrew access (or the user is gone): sign in again.
    Revoked,
    /// The upstream or storage is unavailable: try again later.
    Unavailable,
    /// The access policy no longer admits the user (audited here).
    NotAllowed(Refusal),
}

/// Checks a bearer token presented at the gateway.
pub async fn check_access(
    services: &Services,
    token: Option<SecretToken>,
) -> Result<Access, AccessRefusal> {
    let token = token.ok_or(AccessRefusal::NoToken)?;
    let now = services.clock.now();
    let introspect = IntrospectToken { token, now };
    let Ok(Ok(record)) = services.broker.read(introspect).await else {
        return Err(AccessRefusal::Unavailable);
    };
    let Some(record) = record.filter(|r| r.kind == TokenKind::Access) else {
        return Err(AccessRefusal::UnknownToken);
    };
    let resource = services.config.resource();
    if record.resource.as_deref().is_some_and(|r| r != resource) {
        let why = "the token was issued for another resource (audience) than this gateway's";
        timeline::gateway_refused(services, &record.client_id, "invalid_token", why);
        return Err(AccessRefusal::OtherResource);
    }
    let lookup = GetClient {
        client_id: record.client_id.clone(),
        now,
    };
    let client = match services.registry.read(lookup).await {
        Ok(Ok(Some(c))) => c,
        Ok(Ok(None)) => {
            let why = "the token's client has expired or is disabled";
            timeline::gateway_refused(services, &record.client_id, "invalid_token", why);
            return Err(AccessRefusal::ClientGone);
        }
        _ => return Err(AccessRefusal::Unavailable),
    };
    let needed = services.config.gateway.scopes.tokens();
    if needed.iter().any(|s| !record.scopes.contains(s)) {
        let why = "the token lacks a scope the gateway requires";
        timeline::gateway_refused(services, &record.client_id, "insufficient_scope", why);
        return Err(AccessRefusal::InsufficientScope);
    }
    timeline::gateway_call(services, &record.client_id, now);
    Ok(Access { record, client })
}

/// The user's upstream access token for a checked access, refreshed first
/// when near expiry. `ip` is the client's address, for the audit log.
pub async fn upstream_session(
    services: &Services,
    access: &Access,
    ip: &str,
) -> Result<UpstreamSession, SessionRefusal> {
    let creds = upstream_credentials(services, None, &access.client)
        .await
        .map_err(SessionRefusal::Credentials)?;
    let client_id = &access.record.client_id;
    let refused = |code: &str, why: &str| timeline::gateway_refused(services, client_id, code, why);
    let user = ensure_fresh(services, &access.record.user, &creds)
        .await
        .map_err(|e| match e {
            Freshness::Revoked => {
                refused(
                    "invalid_token",
                    "the identity provider withdrew the user's access; sign in again",
                );
                SessionRefusal::Revoked
            }
            Freshness::Unavailable => {
                refused(
                    "temporarily_unavailable",
                    "the user's upstream token could not be refreshed now",
                );
                SessionRefusal::Unavailable
            }
            Freshness::NotAllowed { refusal, email } => {
                refused(
                    "access_denied",
                    &format!("refused by the access policy: {refusal}"),
                );
                record_refusal(Stage::Gateway, refusal, client_id, ip, email.as_deref());
                SessionRefusal::NotAllowed(refusal)
            }
        })?;
    Ok(UpstreamSession {
        user: user.label().to_owned(),
        access_token: user.tokens.access_token,
        client_id: access.record.client_id.clone(),
    })
}
