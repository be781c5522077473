//! Token introspection (RFC 7662): what a live token is, for a resource
//! server holding the introspection secret or for the client the token
//! belongs to.

use subtle::ConstantTimeEq;

use super::{authenticate, Presented};
use crate::actors::registry::GetClient;
use crate::actors::token_broker::{IntrospectToken, TokenKind, TokenRecord};
use crate::actors::vault::{LoadUserCredentials, UserRef};
use crate::clock::UnixTime;
use crate::domain::{ClientId, SecretToken};
use crate::service::{Answered, ServiceError, Services};

/// Who asks.
#[derive(Debug)]
pub enum Introspector {
    /// A resource server, with the configured introspection secret
    /// (`Authorization: Bearer …`): it may ask about any token.
    ResourceServer(SecretToken),
    /// A client, about its own tokens only.
    Client(Presented),
}

/// The answer: a token that is not live (or not the asking client's) is
/// only `inactive`, whatever the reason.
#[derive(Debug)]
pub enum Introspection {
    Inactive,
    Active(ActiveToken),
}

/// A live token, as RFC 7662 §2.2 describes it.
#[derive(Debug)]
pub struct ActiveToken {
    pub scope: String,
    pub client_id: ClientId,
    /// The upstream subject of the user.
    pub sub: String,
    /// The user's verified email, only when the grant includes the email.
    pub username: Option<String>,
    /// `Bearer` or `refresh_token`.
    pub token_type: &'static str,
    pub exp: UnixTime,
    pub iat: UnixTime,
    pub iss: String,
    /// The RFC 8707 resource the token is bound to.
    pub aud: Option<String>,
}

/// Introspects `token` for `who`: a resource server's secret is compared in
/// constant time; a client is authenticated as at the token endpoint.
pub async fn introspect(
    services: &Services,
    who: Introspector,
    token: Option<SecretToken>,
    ip: &str,
) -> Result<Introspection, ServiceError> {
    let owner = owner_asked_for(services, who, ip).await?;
    let token = token.ok_or_else(|| ServiceError::invalid_request("token is required"))?;
    let now = services.clock.now();
    let record = services
        .broker
        .read(IntrospectToken { token, now })
        .await
        .answered()?;
    let record = record.filter(|r| owner.as_ref().is_none_or(|o| *o == r.client_id));
    let Some(r) = record else {
        return Ok(Introspection::Inactive);
    };
    // A token of a disabled or expired client is no longer active.
    let client = GetClient {
        client_id: r.client_id.clone(),
        now,
    };
    if services.registry.read(client).await.answered()?.is_none() {
        return Ok(Introspection::Inactive);
    }
    Ok(Introspection::Active(describe(services, r).await))
}

/// Whose tokens the caller may ask about: any (`None`) for a resource
/// server whose secret matches (compared in constant time), else its own
/// once the client is authenticated.
async fn owner_asked_for(
    services: &Services,
    who: Introspector,
    ip: &str,
) -> Result<Option<ClientId>, ServiceError> {
    match who {
        Introspector::ResourceServer(presented) => {
            let secret = &services.config.oauth.introspection_secret.0;
            let matches = bool::from(presented.expose().as_bytes().ct_eq(secret.as_bytes()));
            if secret.is_empty() || !matches {
                return Err(ServiceError::invalid_token(
                    "unknown introspection credential",
                ));
            }
            Ok(None)
        }
        Introspector::Client(presented) => Ok(Some(
            authenticate(services, &presented, ip).await?.client_id,
        )),
    }
}

/// A live token's description, with its user's identity from the Vault
/// (the token names its user by the Vault's id only).
async fn describe(services: &Services, r: TokenRecord) -> ActiveToken {
    let load = LoadUserCredentials(UserRef::Id(r.user.clone()));
    let user = match services.vault.read(load).await.answered() {
        Ok(user) => user,
        Err(e) => {
            tracing::warn!(error = %e, "introspection without the user's identity: the vault could not answer");
            None
        }
    };
    // The email only to a holder of a grant that includes it, and only
    // when the issuer verified it.
    let username = user
        .as_ref()
        .filter(|_| grants_email(&r.scopes))
        .and_then(|u| u.verified_email())
        .map(str::to_owned);
    ActiveToken {
        scope: r.scopes.join(" "),
        sub: user.map_or(r.user, |u| u.sub),
        username,
        token_type: match r.kind {
            TokenKind::Access => "Bearer",
            TokenKind::Refresh => "refresh_token",
        },
        exp: r.expires_at,
        iat: r.issued_at,
        iss: services.config.issuer(),
        aud: r.resource,
        client_id: r.client_id,
    }
}

/// Whether a grant's scopes include the user's email (`email`, or Google's
/// `https://www.googleapis.com/auth/userinfo.email`).
fn grants_email(scopes: &[String]) -> bool {
    scopes.iter().any(|s| {
        matches!(
            s.as_str(),
            "email" | "https://www.googleapis.com/auth/userinfo.email"
        )
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn email_and_googles_alias_grant_the_email_and_nothing_else_does() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(super::grants_email(&s(&["openid", "email"])));
        assert!(super::grants_email(&s(&[
            "https://www.googleapis.com/auth/userinfo.email"
        ])));
        for without in [
            &["openid"][..],
            &["openid", "profile", "emails"][..],
            &[][..],
        ] {
            assert!(!super::grants_email(&s(without)), "{without:?}");
        }
    }
}
