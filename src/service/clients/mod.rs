//! The clients: dynamic registration and its management by the client
//! (RFC 7591, RFC 7592, in [`registration`]), their administration by an
//! operator ([`admin`]), and the upstream client their users sign in with.

pub mod admin;
pub mod registration;

use crate::actors::registry::ClientView;
use crate::actors::vault::{
    DeleteSecrets, OpenSecret, SealSecret, VaultError, UPSTREAM_CLIENT_SECRET,
};
use crate::domain::ErrorCode;
use crate::service::{ServiceError, Services};
use crate::upstream::Credentials;

/// The upstream client a sign-in uses: the transaction's custom client id
/// (public, PKCE only), else the client's registered custom client (secret
/// from the Vault), else the operator's default.
pub async fn upstream_credentials(
    services: &Services,
    transaction_client_id: Option<&str>,
    client: &ClientView,
) -> Result<Credentials, ServiceError> {
    if let Some(id) = transaction_client_id {
        return Ok(Credentials {
            client_id: id.to_owned(),
            client_secret: None,
        });
    }
    if let Some(id) = &client.metadata.upstream_client_id {
        let msg = OpenSecret {
            kind: UPSTREAM_CLIENT_SECRET.into(),
            id: client.client_id.clone(),
        };
        let secret = services.vault.read(msg).await?.map_err(|e| {
            tracing::error!(error = %e, client_id = %client.client_id, "custom upstream client secret unreadable");
            ServiceError::server_error()
        })?;
        return Ok(Credentials {
            client_id: id.clone(),
            client_secret: secret.and_then(|s| String::from_utf8(s).ok()),
        });
    }
    services
        .upstream
        .default_credentials()
        .cloned()
        .ok_or_else(|| {
            ServiceError::unavailable(
                "no upstream client is configured (GOOGLE_CLIENT_ID / GOOGLE_OAUTH_CREDENTIALS_FILE)",
            )
        })
}

/// Deletes a removed client's custom upstream client secret, if it had
/// one. Best effort: a failure is logged (the secret stays sealed, under an
/// id nobody holds any more).
pub async fn forget_upstream_secret(services: &Services, client_id: &str) {
    let msg = DeleteSecrets {
        kind: UPSTREAM_CLIENT_SECRET.into(),
        ids: vec![client_id.to_owned()],
    };
    if !matches!(services.vault.send(msg).await, Ok(Ok(_))) {
        tracing::error!(
            client_id,
            "the custom upstream client secret of a removed client could not be deleted"
        );
    }
}

/// Seals a custom upstream client secret in the Vault under the proxy
/// client's id.
async fn seal_upstream_secret(
    services: &Services,
    client_id: &str,
    secret: Option<String>,
) -> Result<(), ServiceError> {
    let Some(secret) = secret else { return Ok(()) };
    let msg = SealSecret {
        kind: UPSTREAM_CLIENT_SECRET.into(),
        id: client_id.to_owned(),
        plaintext: secret.into_bytes(),
    };
    match services.vault.send(msg).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(VaultError::TooLarge)) => Err(secret_too_long()),
        Ok(Err(e)) => Err(secret_not_stored(e)),
        Err(e) => Err(secret_not_stored(e)),
    }
}

fn secret_not_stored(cause: impl std::fmt::Display) -> ServiceError {
    tracing::error!(error = %cause, "a custom upstream client secret could not be sealed");
    ServiceError::unavailable("the upstream client secret could not be stored")
}

fn secret_too_long() -> ServiceError {
    ServiceError::invalid(
        ErrorCode::InvalidClientMetadata,
        "upstream_client_secret is too long",
    )
}
