//! The Vault owns every secret that must be readable again: users'
//! upstream (Google) tokens and other sealed secrets, in its own trees
//! ([`VaultTree`](crate::storage::VaultTree)). AES-256-GCM with a key id on
//! every ciphertext, so keys rotate (see [`cipher`]). [`VaultCore`] holds
//! the logic, [`Vault`] runs it on its own thread; reads of users and
//! secrets are answered by [`VaultReader`] on the caller's thread and have
//! no handler here.

pub use crate::crypto::cipher;
mod core;
pub use crate::crypto::keyfile;
pub mod messages;
mod reader;
mod records;

use actix::{Actor, Handler, SyncContext};

pub use self::core::{restore_snapshot, scan_all, Snapshot, VaultCore, VaultItem};
pub use messages::*;
pub use reader::{PublishedCodec, VaultReader};
pub use records::{UpstreamTokens, UserCredentials, UserCredentialsV1, UserRef, UserSummary};

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

/// With several instances on one database, how often each reads the key
/// file again (a rotation made elsewhere reaches it within this).
pub const KEY_RELOAD_SECONDS: u64 = 10;

/// The most a secret sealed with [`SealSecret`] may hold: upstream client
/// secrets are tens of bytes, verifiers 43; anything larger is refused
/// rather than stored.
pub const MAX_SECRET_BYTES: usize = 16 * 1024;

/// The kind under which custom upstream client secrets are sealed (id: the
/// proxy client's id); deleted with the client.
pub const UPSTREAM_CLIENT_SECRET: &str = "upstream_client";
/// The kind of Drawbridge's own upstream PKCE verifiers (id: hex of the
/// sign-in's state hash); deleted at the callback or with the expired sign-in.
pub const UPSTREAM_PKCE: &str = "upstream_pkce";

/// The actor: runs [`VaultCore`] on its own thread.
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

impl Handler<PurgeUnreferencedUsers> for Vault {
    type Result = Result<usize, VaultError>;
    fn handle(&mut self, msg: PurgeUnreferencedUsers, _: &mut Self::Context) -> Self::Result {
        self.core.purge_users(&msg.keep, msg.idle_before, msg.limit)
    }
}

impl Handler<StoreUserCredentials> for Vault {
    type Result = Result<String, VaultError>;
    fn handle(&mut self, msg: StoreUserCredentials, _: &mut Self::Context) -> Self::Result {
        self.core.store_user(msg.0)
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

impl Handler<RotateKey> for Vault {
    type Result = Result<RotationReport, VaultError>;
    fn handle(&mut self, msg: RotateKey, _: &mut Self::Context) -> Self::Result {
        let report = self.core.rotate(msg.now)?;
        report.audit();
        Ok(report)
    }
}

impl Handler<ReloadKeys> for Vault {
    type Result = Result<Option<String>, VaultError>;
    fn handle(&mut self, msg: ReloadKeys, _: &mut Self::Context) -> Self::Result {
        self.core.reload_keys(msg.allow_insecure_permissions)
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

crate::track_writes!(Vault:
    PurgeUnreferencedUsers,
    StoreUserCredentials,
    DeleteUserCredentials,
    ListUsers,
    SealSecret,
    DeleteSecrets,
    SecretIds,
    RotateKey,
    ReloadKeys,
    WriteSnapshot,
    GetVaultStatus,
);

impl crate::actors::handle::HasReader for Vault {
    type Reader = VaultReader;
}

#[cfg(test)]
mod tests;
