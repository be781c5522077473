//! Messages the Vault answers. Reads of users and secrets
//! ([`LoadUserCredentials`], [`LoadUsersByVerifiedEmail`], [`OpenSecret`])
//! are answered by the reader on the caller's thread.

use actix::Message;

use super::records::{UserCredentials, UserRef, UserSummary};
use super::VaultError;
use crate::clock::UnixTime;

/// Stores (or replaces) a user's upstream credentials.
#[derive(Debug, Message)]
#[rtype(result = "Result<String, VaultError>")]
pub struct StoreUserCredentials(pub UserCredentials);

/// Loads a user's credentials by issuer and subject, or by id.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<UserCredentials>, VaultError>")]
pub struct LoadUserCredentials(pub UserRef);

/// Every user whose email is this one and verified by their issuer (a user
/// with the same email unverified is never among them).
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<UserCredentials>, VaultError>")]
pub struct LoadUsersByVerifiedEmail(pub String);

/// Deletes a user's credentials; answers whether there were any.
#[derive(Debug, Message)]
#[rtype(result = "Result<bool, VaultError>")]
pub struct DeleteUserCredentials(pub UserRef);

/// A page of users with stored credentials.
#[derive(Debug, Message)]
#[rtype(result = "Result<UserPage, VaultError>")]
pub struct ListUsers {
    pub after: Option<Vec<u8>>,
    pub limit: usize,
}

/// Seals and stores a secret under `kind`/`id` (e.g. a custom upstream client secret).
#[derive(Message)]
#[rtype(result = "Result<(), VaultError>")]
pub struct SealSecret {
    pub kind: String,
    pub id: String,
    pub plaintext: Vec<u8>,
}

/// Deletes secrets sealed under `kind` (those of `ids` that exist);
/// answers how many there were.
#[derive(Debug, Message)]
#[rtype(result = "Result<usize, VaultError>")]
pub struct DeleteSecrets {
    pub kind: String,
    pub ids: Vec<String>,
}

/// A page of the ids of the secrets sealed under `kind`, in key order,
/// after `after`.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<String>, VaultError>")]
pub struct SecretIds {
    pub kind: String,
    pub after: Option<String>,
    pub limit: usize,
}

/// A key derived from the keyring for `purpose` (see
/// [`Keyring::derive_key`](crate::crypto::cipher::Keyring::derive_key));
/// `None` when the storage mode does not encrypt.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<[u8; 32]>, VaultError>")]
pub struct DerivedKey {
    pub purpose: &'static str,
}

/// Opens a secret stored with [`SealSecret`].
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<Vec<u8>>, VaultError>")]
pub struct OpenSecret {
    pub kind: String,
    pub id: String,
}

/// Rotates the encryption key (or completes an interrupted rotation).
#[derive(Debug, Message)]
#[rtype(result = "Result<RotationReport, VaultError>")]
pub struct RotateKey {
    pub now: UnixTime,
}

/// Reads the key file again and takes its keyring when it changed (another
/// instance sharing the database rotated the key); answers the current
/// key's id when it changed.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<String>, VaultError>")]
pub struct ReloadKeys {
    pub allow_insecure_permissions: bool,
}

/// Writes the MEMORY_WITH_BACKUP snapshot now; answers the records written.
#[derive(Debug, Message)]
#[rtype(result = "Result<usize, VaultError>")]
pub struct WriteSnapshot;

/// Deletes users no grant references any more, idle since `idle_before`.
#[derive(Debug, Message)]
#[rtype(result = "Result<usize, VaultError>")]
pub struct PurgeUnreferencedUsers {
    pub keep: std::collections::HashSet<String>,
    pub idle_before: UnixTime,
    pub limit: usize,
}

/// Whether values are sealed, and under which key.
#[derive(Debug, Message)]
#[rtype(result = "VaultStatus")]
pub struct GetVaultStatus;

#[derive(Debug, Clone, PartialEq, Eq, actix::MessageResponse)]
pub struct VaultStatus {
    pub encryption_enabled: bool,
    pub key_id: Option<String>,
}

/// What a rotation did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RotationReport {
    pub new_key_id: String,
    pub resealed: usize,
    pub already_current: usize,
    /// Records that could not be opened; they keep their old key.
    pub unreadable: Vec<String>,
    pub retired_keys: Vec<String>,
}

impl RotationReport {
    /// Emits the `key_rotated` audit record.
    pub fn audit(&self) {
        crate::audit::AuditEvent::KeyRotated {
            key_id: &self.new_key_id,
            resealed: self.resealed,
            retired: self.retired_keys.len(),
        }
        .emit();
    }
}

/// A page of users for operators, with the records that could not be opened.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UserPage {
    pub users: Vec<UserSummary>,
    pub unreadable: Vec<String>,
    pub next: Option<Vec<u8>>,
}
