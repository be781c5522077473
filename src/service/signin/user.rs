//! The user a sign-in names, kept in the Vault with their upstream tokens.

use crate::actors::vault::{
    LoadUserCredentials, StoreUserCredentials, UpstreamTokens, UserCredentials, UserRef,
};
use crate::service::Services;
use crate::upstream::{Identity, UpstreamTokenSet};

/// Keeps the user's upstream tokens under their issuer and subject, keeping
/// a refresh token from an earlier sign-in when the provider sends none
/// this time; answers the user's id. The email is kept with whether the
/// issuer verified it; only a verified one ever names the user.
pub(super) async fn store_user(
    services: &Services,
    identity: &Identity,
    tokens: &UpstreamTokenSet,
    now: i64,
) -> Option<String> {
    let load = |issuer: &str| {
        services.vault.read(LoadUserCredentials(UserRef::Subject {
            issuer: issuer.to_owned(),
            sub: identity.sub.clone(),
        }))
    };
    let mut previous = load(&identity.issuer)
        .await
        .ok()
        .and_then(|r| r.ok())
        .flatten();
    if previous.is_none() {
        // A record from before issuers were recorded (the Vault moves it).
        previous = load("")
            .await
            .ok()
            .and_then(|r| r.ok())
            .flatten()
            .filter(|p| p.issuer.is_empty() || p.issuer == identity.issuer);
    }
    let refresh_token = tokens.refresh_token.clone().or_else(|| {
        previous
            .as_ref()
            .and_then(|p| p.tokens.refresh_token.clone())
    });
    let creds = UserCredentials {
        uid: previous.as_ref().map(|p| p.uid.clone()).unwrap_or_default(),
        issuer: identity.issuer.clone(),
        sub: identity.sub.clone(),
        email: identity.email.clone(),
        email_verified: identity.email_verified,
        tokens: UpstreamTokens {
            access_token: tokens.access_token.clone(),
            refresh_token,
            expires_at: tokens.expires_in.map(|s| now + s as i64),
            scopes: tokens.scopes.clone(),
            id_token: tokens.id_token.clone(),
        },
        created_at: previous.as_ref().map_or(now, |p| p.created_at),
        updated_at: now,
    };
    match services.vault.send(StoreUserCredentials(creds)).await {
        Ok(Ok(uid)) => Some(uid),
        _ => None,
    }
}
