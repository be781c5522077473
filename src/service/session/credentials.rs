//! Which upstream client a user's session uses.

use crate::actors::registry::ClientView;
use crate::actors::vault::{OpenSecret, UPSTREAM_CLIENT_SECRET};
use crate::domain::ErrorCode;
use crate::service::Services;
use crate::upstream::Credentials;

/// Why the upstream client of a sign-in could not be named.
#[derive(Debug)]
pub enum CredentialsError {
    /// The Vault could not be asked now (its mailbox is closed or full).
    Unavailable,
    /// The client's custom upstream secret is stored but cannot be opened.
    Unreadable,
    /// No upstream client is configured on this server.
    NotConfigured,
}

impl std::fmt::Display for CredentialsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.description())
    }
}

impl CredentialsError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unreadable => ErrorCode::ServerError,
            Self::Unavailable | Self::NotConfigured => ErrorCode::TemporarilyUnavailable,
        }
    }

    pub fn description(&self) -> &'static str {
        match self {
            Self::Unavailable => {
                "the server cannot store this change right now; try again shortly"
            }
            Self::Unreadable => "the server could not complete the request",
            Self::NotConfigured => {
                "no upstream client is configured (GOOGLE_CLIENT_ID / GOOGLE_OAUTH_CREDENTIALS_FILE)"
            }
        }
    }
}

/// The upstream client a user's session uses: the sign-in's custom client
/// id (public, PKCE only), else the client's registered custom client
/// (secret from the Vault), else the operator's default.
pub async fn upstream_credentials(
    services: &Services,
    transaction_client_id: Option<&str>,
    client: &ClientView,
) -> Result<Credentials, CredentialsError> {
    if let Some(id) = transaction_client_id {
        return Ok(Credentials {
            client_id: id.to_owned(),
            client_secret: None,
        });
    }
    if let Some(id) = &client.metadata.upstream_client_id {
        let secret = services
            .vault
            .read(OpenSecret { kind: UPSTREAM_CLIENT_SECRET.into(), id: client.client_id.to_string() })
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "request refused: storage or actor unavailable");
                CredentialsError::Unavailable
            })?
            .map_err(|e| {
                tracing::error!(error = %e, client_id = %client.client_id, "custom upstream client secret unreadable");
                CredentialsError::Unreadable
            })?;
        let secret = secret.and_then(|s| String::from_utf8(s).ok());
        return Ok(Credentials {
            client_id: id.clone(),
            client_secret: secret,
        });
    }
    services
        .upstream
        .default_credentials()
        .cloned()
        .ok_or(CredentialsError::NotConfigured)
}
