//! The Vault owns every secret that must be readable again: users'
//! upstream (Google) tokens and other sealed secrets. AES-256-GCM with a key
//! id on every ciphertext, so keys rotate (see [`cipher`]).

pub use crate::crypto::cipher;
mod core;
pub use crate::crypto::keyfile;
mod records;

use actix::{Actor, Handler, Message, SyncContext};

pub use self::core::{
    restore_snapshot, scan_all, RotationReport, UserPage, VaultCore, VaultItem, VaultReader,
};
pub use records::{UpstreamTokens, UserCredentials, UserCredentialsV1, UserRef, UserSummary};

use crate::clock::UnixTime;
use crate::storage::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("record `{record}` cannot be opened: {error}")]
    Cipher {
        record: String,
        error: cipher::CipherError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    KeyFile(#[from] keyfile::KeyFileError),
    #[error("this storage mode does not encrypt (FILE_PLAINTEXT)")]
    NoEncryption,
    #[error("key rotation: {0}")]
    Rotation(String),
    #[error("snapshot: {0}")]
    Snapshot(String),
    #[error("a secret of more than {MAX_SECRET_BYTES} bytes is not sealed")]
    TooLarge,
}

/// The most a secret sealed with [`SealSecret`] may hold: upstream client
/// secrets are tens of bytes, verifiers 43; anything larger is refused
/// rather than stored.
pub const MAX_SECRET_BYTES: usize = 4096;

/// The kind under which custom upstream client secrets are sealed (id: the
/// proxy client's id); deleted with the client.
pub const UPSTREAM_CLIENT_SECRET: &str = "upstream_client";
/// The kind of Drawbridge's own upstream PKCE verifiers (id: hex of the
/// sign-in's state hash); deleted at the callback or with the expired sign-in.
pub const UPSTREAM_PKCE: &str = "upstream_pkce";

pub struct Vault {
    core: VaultCore,
}

impl Vault {
    pub fn new(core: VaultCore) -> Self {
        Self { core }
    }
}

impl Actor for Vault {
    type Context = SyncContext<Self>;
}

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

impl Handler<PurgeUnreferencedUsers> for Vault {
    type Result = Result<usize, VaultError>;
    fn handle(&mut self, msg: PurgeUnreferencedUsers, _: &mut Self::Context) -> Self::Result {
        self.core.purge_users(&msg.keep, msg.idle_before, msg.limit)
    }
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

impl Handler<StoreUserCredentials> for Vault {
    type Result = Result<String, VaultError>;
    fn handle(&mut self, msg: StoreUserCredentials, _: &mut Self::Context) -> Self::Result {
        self.core.store_user(msg.0)
    }
}

impl Handler<LoadUserCredentials> for Vault {
    type Result = Result<Option<UserCredentials>, VaultError>;
    fn handle(&mut self, msg: LoadUserCredentials, _: &mut Self::Context) -> Self::Result {
        self.core.load_user(&msg.0)
    }
}

impl Handler<LoadUsersByVerifiedEmail> for Vault {
    type Result = Result<Vec<UserCredentials>, VaultError>;
    fn handle(&mut self, msg: LoadUsersByVerifiedEmail, _: &mut Self::Context) -> Self::Result {
        self.core.users_by_email(&msg.0)
    }
}

impl Handler<DeleteUserCredentials> for Vault {
    type Result = Result<bool, VaultError>;
    fn handle(&mut self, msg: DeleteUserCredentials, _: &mut Self::Context) -> Self::Result {
        self.core.delete_user(&msg.0)
    }
}

impl Handler<ListUsers> for Vault {
    type Result = Result<UserPage, VaultError>;
    fn handle(&mut self, msg: ListUsers, _: &mut Self::Context) -> Self::Result {
        self.core.list_users(msg.after.as_deref(), msg.limit)
    }
}

impl Handler<SealSecret> for Vault {
    type Result = Result<(), VaultError>;
    fn handle(&mut self, msg: SealSecret, _: &mut Self::Context) -> Self::Result {
        if msg.plaintext.len() > MAX_SECRET_BYTES {
            return Err(VaultError::TooLarge);
        }
        self.core.seal_secret(&msg.kind, &msg.id, &msg.plaintext)
    }
}

impl Handler<DeleteSecrets> for Vault {
    type Result = Result<usize, VaultError>;
    fn handle(&mut self, msg: DeleteSecrets, _: &mut Self::Context) -> Self::Result {
        self.core.delete_secrets(&msg.kind, &msg.ids)
    }
}

impl Handler<SecretIds> for Vault {
    type Result = Result<Vec<String>, VaultError>;
    fn handle(&mut self, msg: SecretIds, _: &mut Self::Context) -> Self::Result {
        self.core
            .secret_ids(&msg.kind, msg.after.as_deref(), msg.limit)
    }
}

impl Handler<OpenSecret> for Vault {
    type Result = Result<Option<Vec<u8>>, VaultError>;
    fn handle(&mut self, msg: OpenSecret, _: &mut Self::Context) -> Self::Result {
        self.core.open_secret(&msg.kind, &msg.id)
    }
}

impl Handler<RotateKey> for Vault {
    type Result = Result<RotationReport, VaultError>;
    fn handle(&mut self, msg: RotateKey, _: &mut Self::Context) -> Self::Result {
        let report = self.core.rotate(msg.now)?;
        report.audit();
        Ok(report)
    }
}

impl Handler<WriteSnapshot> for Vault {
    type Result = Result<usize, VaultError>;
    fn handle(&mut self, _: WriteSnapshot, _: &mut Self::Context) -> Self::Result {
        self.core.write_snapshot()
    }
}

impl Handler<GetVaultStatus> for Vault {
    type Result = VaultStatus;
    fn handle(&mut self, _: GetVaultStatus, _: &mut Self::Context) -> Self::Result {
        let ring = self.core.codec().keyring();
        VaultStatus {
            encryption_enabled: ring.is_some(),
            key_id: ring.map(|r| r.current_id().to_owned()),
        }
    }
}

#[cfg(test)]
mod tests;

impl crate::actors::handle::HasReader for Vault {
    type Reader = VaultReader;
}

impl crate::actors::handle::Reads<LoadUserCredentials> for VaultReader {
    fn read(&self, msg: LoadUserCredentials) -> Result<Option<UserCredentials>, VaultError> {
        self.load_user(&msg.0)
    }
}

impl crate::actors::handle::Reads<OpenSecret> for VaultReader {
    fn read(&self, msg: OpenSecret) -> Result<Option<Vec<u8>>, VaultError> {
        self.open_secret(&msg.kind, &msg.id)
    }
}

impl crate::actors::handle::Reads<LoadUsersByVerifiedEmail> for VaultReader {
    fn read(&self, msg: LoadUsersByVerifiedEmail) -> Result<Vec<UserCredentials>, VaultError> {
        self.users_by_email(&msg.0)
    }
}
