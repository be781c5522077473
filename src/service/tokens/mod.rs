//! The token flows: the `authorization_code` and `refresh_token` grants
//! (RFC 6749 §4.1.3, §6, with OAuth 2.1 refresh-token rotation), revocation
//! (RFC 7009), introspection (RFC 7662), and the client authentication they
//! share (RFC 6749 §2.3).
//!
//! - [`exchange`]: one token request → the tokens issued, with the flow's
//!   metrics and audit records;
//! - [`revoke`], [`introspect`]: the other two endpoints;
//! - [`authenticate`]: presented credentials → the registered client.

mod client_auth;
mod grants;
mod introspect;
mod revoke;

pub use client_auth::{authenticate, Presented};
pub use introspect::{introspect, ActiveToken, Introspection, Introspector};
pub(crate) use revoke::end_upstream_session;
pub use revoke::revoke;

use crate::actors::registry::ClientView;
use crate::actors::token_broker::TokenPair;
use crate::actors::vault::UpstreamTokens;
use crate::audit::AuditEvent;
use crate::domain::{ErrorCode, SecretToken};
use crate::metrics::METRICS;
use crate::service::{ServiceError, Services};
use crate::upstream::Credentials;

/// A token request, read from the form but not yet checked. A missing
/// parameter is refused only after the client authenticated, so the
/// refusal is counted and audited with its client.
#[derive(Debug)]
pub struct TokenRequest {
    pub client: Presented,
    pub grant: GrantRequest,
    /// RFC 8707 `resource`, as sent.
    pub resource: Option<String>,
}

/// The grant a token request asks for.
#[derive(Debug)]
pub enum GrantRequest {
    AuthorizationCode(CodeGrant),
    RefreshToken(RefreshGrant),
    /// Any other `grant_type`, as sent.
    Unsupported(String),
}

/// `grant_type=authorization_code`.
#[derive(Debug)]
pub struct CodeGrant {
    pub code: Option<SecretToken>,
    pub redirect_uri: Option<String>,
    /// The PKCE verifier (RFC 7636 §4.5).
    pub code_verifier: Option<SecretToken>,
}

/// `grant_type=refresh_token`.
#[derive(Debug)]
pub struct RefreshGrant {
    pub refresh_token: Option<SecretToken>,
    /// A narrower scope than granted, as sent (RFC 6749 §6).
    pub scope: Option<String>,
}

impl GrantRequest {
    /// The grant type as metrics and audit records name it.
    pub fn label(&self) -> &'static str {
        match self {
            Self::AuthorizationCode(_) => "authorization_code",
            Self::RefreshToken(_) => "refresh_token",
            Self::Unsupported(_) => "other",
        }
    }
}

/// What a token request is answered with. `Debug` never shows a token.
pub enum Issued {
    /// Drawbridge's own tokens.
    Minted(TokenPair),
    /// `token_mode = "passthrough"`, at the code exchange: the upstream's
    /// tokens as stored, with the seconds they have left.
    Stored {
        tokens: UpstreamTokens,
        expires_in: Option<i64>,
    },
    /// The upstream's own answer, relayed as it came (a passthrough
    /// refresh, or direct upstream credentials).
    Relayed(serde_json::Value),
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Minted(pair) => write!(f, "Minted({pair:?})"),
            Self::Stored { tokens, .. } => write!(f, "Stored({tokens:?})"),
            Self::Relayed(_) => f.write_str("Relayed(***)"),
        }
    }
}

/// Answers one token request: authenticates the client, runs its grant,
/// and records the outcome (`token_exchanges` metric, `token_issued`,
/// `token_refreshed` or `token_exchange_failed` audit records).
pub async fn exchange(
    services: &Services,
    request: TokenRequest,
    ip: &str,
) -> Result<Issued, ServiceError> {
    let TokenRequest {
        client: who,
        grant,
        resource,
    } = request;
    if !who.client_id.starts_with("mcp_") && services.config.oauth.allow_direct_upstream_credentials
    {
        return direct(services, who, grant).await;
    }
    let client = authenticate(services, &who, ip).await?;
    let label = grant.label();
    let result = match grant {
        GrantRequest::AuthorizationCode(g) => {
            grants::redeem_code(services, &client, g, resource, ip).await
        }
        GrantRequest::RefreshToken(g) => grants::refresh(services, &client, g, resource, ip).await,
        GrantRequest::Unsupported(other) => Err(ServiceError::invalid(
            ErrorCode::UnsupportedGrantType,
            format!(
                "grant_type `{}` is not supported",
                other.chars().take(40).collect::<String>()
            ),
        )),
    };
    record(&client, ip, label, &result);
    crate::service::timeline::exchanged(services, &client.client_id, label, &result);
    result.map(|(issued, _)| issued)
}

/// The outcome of one exchange, as the metric and the audit log see it.
fn record(
    client: &ClientView,
    ip: &str,
    label: &'static str,
    result: &Result<(Issued, String), ServiceError>,
) {
    let client_id = &client.client_id;
    match result {
        Ok((_, grant_id)) => {
            METRICS
                .token_exchanges
                .with_label_values(&[label, "success"])
                .inc();
            if label == "refresh_token" {
                AuditEvent::TokenRefreshed {
                    client_id,
                    ip,
                    grant_id,
                }
                .emit()
            } else {
                AuditEvent::TokenIssued {
                    client_id,
                    ip,
                    grant_id,
                }
                .emit()
            }
        }
        Err(e) => {
            let reason = e.code.as_str();
            METRICS
                .token_exchanges
                .with_label_values(&[label, reason])
                .inc();
            AuditEvent::TokenExchangeFailed {
                client_id,
                ip,
                grant_type: label,
                reason,
            }
            .emit()
        }
    }
}

/// The compatibility switch (`oauth.allow_direct_upstream_credentials`): a
/// client id without the `mcp_` prefix is a real upstream client, and its
/// request goes upstream as it is.
async fn direct(
    services: &Services,
    who: Presented,
    grant: GrantRequest,
) -> Result<Issued, ServiceError> {
    tracing::warn!(client_id = %who.client_id, "direct upstream credentials used at the token endpoint (compatibility switch)");
    let creds = Credentials {
        client_id: who.client_id,
        client_secret: who.secret.map(|s| s.expose().to_owned()),
    };
    let upstream = &services.upstream;
    let tokens = match grant {
        GrantRequest::AuthorizationCode(g) => {
            let code = g.code.ok_or_else(code_required)?;
            let redirect = g.redirect_uri.unwrap_or_default();
            let verifier = g.code_verifier.as_ref().map_or("", SecretToken::expose);
            let code = code.expose();
            upstream
                .exchange_code(&creds, code, verifier, &redirect)
                .await
        }
        GrantRequest::RefreshToken(g) => {
            let refresh = g.refresh_token.ok_or_else(refresh_token_required)?;
            upstream.refresh(&creds, refresh.expose()).await
        }
        GrantRequest::Unsupported(_) => {
            return Err(ServiceError::invalid(
                ErrorCode::UnsupportedGrantType,
                "authorization_code or refresh_token",
            ))
        }
    };
    Ok(Issued::Relayed(tokens?.raw))
}

fn code_required() -> ServiceError {
    ServiceError::invalid_request("code is required")
}

fn refresh_token_required() -> ServiceError {
    ServiceError::invalid_request("refresh_token is required")
}
