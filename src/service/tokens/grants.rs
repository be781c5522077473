//! The two grants of the token endpoint, once the client is authenticated:
//! the code exchange and the refresh (with the user's upstream session
//! kept fresh first). Each answers what was issued and the grant it
//! belongs to (for the audit record).

use super::{code_required, refresh_token_required, CodeGrant, Issued, RefreshGrant};
use crate::actors::registry::ClientView;
use crate::actors::token_broker::{
    BrokerError, PeekRefresh, RedeemCode, RefreshTokens, RevokeGrant, TokenRecord,
};
use crate::actors::vault::{LoadUserCredentials, UserRef};
use crate::audit::AuditEvent;
use crate::domain::{ErrorCode, GrantType, ScopeSet};
use crate::service::access::{record_refusal, Stage};
use crate::service::session::upstream_credentials;
use crate::service::session::{ensure_fresh, Freshness};
use crate::service::{Answered, ServiceError, Services};

/// The `authorization_code` grant: the code redeemed once, with its PKCE
/// verifier and redirect URI; Drawbridge's tokens, or in passthrough mode
/// the user's upstream tokens.
pub(super) async fn redeem_code(
    services: &Services,
    client: &ClientView,
    grant: CodeGrant,
    resource: Option<String>,
    ip: &str,
) -> Result<(Issued, String), ServiceError> {
    let code = grant.code.ok_or_else(code_required)?;
    let resource = check_resource(services, resource)?;
    let passthrough = services.config.tokens.passthrough;
    let msg = RedeemCode {
        code,
        client_id: client.client_id.clone(),
        redirect_uri: grant.redirect_uri,
        code_verifier: grant.code_verifier.map(|v| v.expose().to_owned()),
        resource,
        mint: !passthrough,
        with_refresh: may_refresh(client),
        now: services.clock.now(),
    };
    let redeemed = services
        .broker
        .send(msg)
        .await?
        .map_err(|e| reuse_aware(e, client, ip))?;
    let grant_id = redeemed.grant.grant_id;
    if let Some(pair) = redeemed.pair {
        return Ok((Issued::Minted(pair), grant_id));
    }
    // token_mode = "passthrough": the upstream's own tokens, as stored.
    let user = services
        .vault
        .read(LoadUserCredentials(UserRef::Id(redeemed.grant.user)))
        .await
        .answered()?
        .ok_or_else(|| ServiceError::invalid_grant("the user's upstream credentials are gone"))?;
    let now = services.clock.now();
    let expires_in = user.tokens.expires_at.map(|exp| (exp - now).max(0));
    let tokens = user.tokens;
    Ok((Issued::Stored { tokens, expires_in }, grant_id))
}

/// The `refresh_token` grant: the refresh token checked (a reused one
/// revokes its family), the user's upstream token refreshed first when it
/// is about to expire (a withdrawn upstream access revokes the grant), then
/// the rotation. In passthrough mode the upstream refreshes.
pub(super) async fn refresh(
    services: &Services,
    client: &ClientView,
    grant: RefreshGrant,
    resource: Option<String>,
    ip: &str,
) -> Result<(Issued, String), ServiceError> {
    let refresh_token = grant.refresh_token.ok_or_else(refresh_token_required)?;
    if !may_refresh(client) {
        return Err(ServiceError::invalid(
            ErrorCode::UnauthorizedClient,
            "this client did not register the refresh_token grant",
        ));
    }
    check_resource(services, resource)?;
    if services.config.tokens.passthrough {
        let creds = upstream_credentials(services, None, client).await?;
        let tokens = services
            .upstream
            .refresh(&creds, refresh_token.expose())
            .await?;
        return Ok((Issued::Relayed(tokens.raw), String::new()));
    }
    let scopes = requested_scopes(services, grant.scope)?;
    let peek = PeekRefresh {
        refresh_token: refresh_token.clone(),
        client_id: client.client_id.clone(),
        now: services.clock.now(),
    };
    let record = services
        .broker
        .read(peek)
        .await?
        .map_err(|e| reuse_aware(e, client, ip))?;
    if record.rotated_at.is_none() {
        // Not a retry within the grace window: the user's upstream session
        // must still be alive.
        keep_upstream_fresh(services, client, &record, ip).await?;
    }
    let msg = RefreshTokens {
        refresh_token,
        client_id: client.client_id.clone(),
        scopes,
        now: services.clock.now(),
    };
    let pair = services
        .broker
        .send(msg)
        .await?
        .map_err(|e| reuse_aware(e, client, ip))?;
    let grant_id = pair.grant_id.clone();
    Ok((Issued::Minted(pair), grant_id))
}

/// A narrower scope asked for at a refresh (RFC 6749 §6), parsed.
fn requested_scopes(
    services: &Services,
    scope: Option<String>,
) -> Result<Option<Vec<String>>, ServiceError> {
    let aliases = services.config.registration.google_scope_aliases;
    let parse = |raw: String| match ScopeSet::parse(&raw, aliases) {
        Ok(set) => Ok(set.tokens().to_vec()),
        Err(e) => Err(ServiceError::invalid(
            ErrorCode::InvalidScope,
            e.to_string(),
        )),
    };
    scope.map(parse).transpose()
}

/// Refreshes the user's upstream token when it is about to expire; a
/// withdrawn upstream access revokes the grant (its tokens could never
/// refresh again) and refuses the refresh.
async fn keep_upstream_fresh(
    services: &Services,
    client: &ClientView,
    record: &TokenRecord,
    ip: &str,
) -> Result<(), ServiceError> {
    let creds = upstream_credentials(services, None, client).await?;
    match ensure_fresh(services, &record.user, &creds).await {
        Ok(_) => Ok(()),
        Err(Freshness::Revoked) => {
            revoke_withdrawn(services, &record.grant_id).await;
            Err(Freshness::Revoked.into())
        }
        Err(Freshness::NotAllowed { refusal, email }) => {
            // The grant stays: put back on the list, the user's tokens work
            // again; until then every refresh and gateway call is refused.
            let client_id = client.client_id.as_str();
            record_refusal(Stage::Refresh, refusal, client_id, ip, email.as_deref());
            Err(Freshness::NotAllowed { refusal, email }.into())
        }
        Err(unavailable) => Err(unavailable.into()),
    }
}

/// Whether the client registered the `refresh_token` grant.
fn may_refresh(client: &ClientView) -> bool {
    client
        .metadata
        .grant_types
        .contains(&GrantType::RefreshToken)
}

/// The RFC 8707 resource, which may only name this server's protected
/// resource, however spelled ([`crate::domain::names_resource`]).
fn check_resource(
    services: &Services,
    resource: Option<String>,
) -> Result<Option<String>, ServiceError> {
    let ours = services.config.resource();
    match resource {
        None => Ok(None),
        Some(r) if crate::domain::names_resource(&r, &ours) => Ok(Some(ours)),
        Some(_) => Err(ServiceError::invalid(
            ErrorCode::InvalidTarget,
            "resource is not this server's protected resource",
        )),
    }
}

/// Revokes the grant of a user whose upstream access was withdrawn; the
/// refusal stands either way.
async fn revoke_withdrawn(services: &Services, grant_id: &str) {
    let msg = RevokeGrant {
        grant_id: grant_id.to_owned(),
    };
    if let Err(e) = services.broker.send(msg).await.answered() {
        tracing::warn!(grant_id, error = %e, "the grant of a withdrawn upstream access could not be revoked");
    }
}

/// Maps a broker refusal, auditing a detected reuse on the way.
fn reuse_aware(e: BrokerError, client: &ClientView, ip: &str) -> ServiceError {
    if let BrokerError::Reuse(reason) = &e {
        AuditEvent::TokenReuseDetected {
            client_id: &client.client_id,
            ip,
            reason,
        }
        .emit();
    }
    e.into()
}
