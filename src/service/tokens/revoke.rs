//! Token revocation (RFC 7009) by a client, and the end of a user's
//! upstream session that may follow it.

use super::{authenticate, Presented};
use crate::actors::token_broker::{RevokeToken, TokenKind};
use crate::actors::vault::{DeleteUserCredentials, LoadUserCredentials, UserRef};
use crate::audit::AuditEvent;
use crate::domain::SecretToken;
use crate::service::session::upstream_credentials;
use crate::service::{Answered, ServiceError, Services};
use crate::upstream::Credentials;

/// Revokes `token` for the authenticated client: an access token alone,
/// a refresh token with its family (and, with
/// `upstream.revoke_upstream_on_revoke`, the user's upstream session).
/// Answers the same whether or not the token was known (RFC 7009 §2.2).
pub async fn revoke(
    services: &Services,
    who: &Presented,
    token: Option<SecretToken>,
    ip: &str,
) -> Result<(), ServiceError> {
    let client = authenticate(services, who, ip).await?;
    let token = token.ok_or_else(|| ServiceError::invalid_request("token is required"))?;
    let msg = RevokeToken {
        token,
        client_id: Some(client.client_id.clone()),
        now: services.clock.now(),
    };
    let Some(record) = services.broker.send(msg).await.answered()? else {
        return Ok(());
    };
    AuditEvent::TokenRevoked {
        client_id: &client.client_id,
        ip,
        kind: record.kind.hint(),
        grant_id: &record.grant_id,
    }
    .emit();
    if record.kind == TokenKind::Refresh && services.config.upstream.revoke_on_revoke {
        match upstream_credentials(services, None, &client).await {
            Ok(creds) => end_upstream_session(services, &creds, &record.user).await,
            Err(e) => {
                tracing::warn!(error = %e, "the upstream session was kept: no upstream client")
            }
        }
    }
    Ok(())
}

/// Revokes the user's upstream refresh token (with `creds`, the upstream
/// client it was issued to) and forgets their upstream credentials. Best
/// effort: a failure is logged, never answered.
pub(crate) async fn end_upstream_session(services: &Services, creds: &Credentials, uid: &str) {
    let user = || UserRef::Id(uid.to_owned());
    match services
        .vault
        .read(LoadUserCredentials(user()))
        .await
        .answered()
    {
        Ok(Some(u)) => {
            if let Some(rt) = &u.tokens.refresh_token {
                if let Err(e) = services.upstream.revoke(creds, rt).await {
                    tracing::warn!(error = %e, "upstream revocation failed");
                }
            }
        }
        Ok(None) => return,
        Err(e) => {
            // Kept, so that a later revocation can still reach the upstream.
            tracing::warn!(error = %e, "the user's upstream credentials could not be read; they are kept");
            return;
        }
    }
    if let Err(e) = services
        .vault
        .send(DeleteUserCredentials(user()))
        .await
        .answered()
    {
        tracing::error!(error = %e, "the user's upstream credentials could not be deleted");
    }
}
