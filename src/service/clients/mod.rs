//! The clients: dynamic registration and its management by the client
//! (RFC 7591, RFC 7592, in [`registration`]), clients known by their
//! metadata document ([`document`]), their administration by an operator
//! ([`admin`]), and the custom upstream client secrets they register.

pub mod admin;
pub mod document;
pub mod registration;

use crate::actors::vault::{DeleteSecrets, SealSecret, VaultError, UPSTREAM_CLIENT_SECRET};
use crate::domain::ErrorCode;
use crate::service::{ServiceError, Services};

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

/// The longest custom upstream client secret taken (Google's are ~35 bytes).
pub(super) const MAX_UPSTREAM_SECRET_BYTES: usize = 4096;

/// Seals a custom upstream client secret in the Vault under the proxy
/// client's id.
async fn seal_upstream_secret(
    services: &Services,
    client_id: &str,
    secret: Option<String>,
) -> Result<(), ServiceError> {
    let Some(secret) = secret else { return Ok(()) };
    if secret.len() > MAX_UPSTREAM_SECRET_BYTES {
        return Err(secret_too_long());
    }
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
