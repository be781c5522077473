//! The Vault's read side (see `actors::handle`): users' credentials and
//! sealed secrets opened on the caller's thread, from a read-only view of
//! the Vault's trees. The core reads through the same [`Sealed`] logic.

use std::sync::{Arc, RwLock};

use super::cipher::{CipherError, Codec};
use super::messages::{DerivedKey, LoadUserCredentials, LoadUsersByVerifiedEmail, OpenSecret};
use super::records::{UserCredentials, UserCredentialsV1, UserRef};
use super::VaultError;
use crate::actors::handle::Reads;
use crate::storage::{codec, keys, ReadOnly, VaultTree};

pub(super) const USER: &str = "user";
/// Record format of [`UserCredentials`] (format 1 is [`UserCredentialsV1`]).
pub(super) const USER_FORMAT: u8 = 2;
const PAGE: usize = 256;

/// The codec as the Vault last published it: shared by the Vault and its
/// readers, replaced whenever a key rotation changes the keyring.
#[derive(Clone)]
pub struct PublishedCodec(Arc<RwLock<Codec>>);

impl PublishedCodec {
    pub fn new(codec: Codec) -> Self {
        Self(Arc::new(RwLock::new(codec)))
    }

    /// The codec in use now.
    pub fn current(&self) -> Codec {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(super) fn publish(&self, codec: &Codec) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = codec.clone();
    }
}

/// Reads of sealed records: the Vault's trees and the codec to open them
/// with (the core's own, or the one published to readers).
pub(super) struct Sealed<'a> {
    pub(super) trees: ReadOnly<VaultTree>,
    pub(super) codec: &'a Codec,
}

impl Sealed<'_> {
    /// Key of a user record: the blind index of issuer and subject; a
    /// record of unknown issuer (written before issuers were recorded)
    /// keeps its old key, the blind index of the subject alone.
    pub(super) fn user_key(&self, issuer: &str, sub: &str) -> Vec<u8> {
        if issuer.is_empty() {
            return self.legacy_user_key(sub);
        }
        // The issuer's length first, so no issuer/subject pair can spell another.
        let subject = format!("{}:{issuer}\n{sub}", issuer.len());
        self.codec.identity_key("subject", &subject).into_bytes()
    }

    pub(super) fn legacy_user_key(&self, sub: &str) -> Vec<u8> {
        self.codec.identity_key("sub", sub).into_bytes()
    }

    /// Key of the email index entry that points to `user_key`. (Format 1
    /// records were indexed under the bare email key, one user per email.)
    pub(super) fn email_entry(&self, email: &str, user_key: &[u8]) -> Vec<u8> {
        let mut k = self.email_key(email);
        k.push(b'/');
        k.extend_from_slice(user_key);
        k
    }

    pub(super) fn email_key(&self, email: &str) -> Vec<u8> {
        self.codec
            .identity_key("email", &email.to_lowercase())
            .into_bytes()
    }

    pub(super) fn resolve(&self, user: &UserRef) -> Result<Option<Vec<u8>>, VaultError> {
        match user {
            UserRef::Subject { issuer, sub } => Ok(Some(self.user_key(issuer, sub))),
            UserRef::Id(uid) => Ok(self.trees.get(VaultTree::UserIds, uid.as_bytes())?),
        }
    }

    pub(super) fn open_user(
        &self,
        key: &[u8],
        stored: &[u8],
    ) -> Result<UserCredentials, VaultError> {
        let plain = self
            .codec
            .unwrap(USER, key, stored)
            .map_err(|e| cipher(key, e))?;
        if codec::format_of(&plain) == Some(USER_FORMAT) {
            return Ok(codec::decode_format(
                VaultTree::Users.into(),
                USER_FORMAT,
                &plain,
            )?);
        }
        let old: UserCredentialsV1 = codec::decode(VaultTree::Users.into(), &plain)?;
        Ok(old.into())
    }

    /// Every user whose email is `email` and verified (email index entries
    /// are only hints: each record is checked).
    pub fn users_by_email(&self, email: &str) -> Result<Vec<UserCredentials>, VaultError> {
        let bare = self.email_key(email);
        let mut prefix = bare.clone();
        prefix.push(b'/');
        let mut keys: Vec<Vec<u8>> = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page =
                self.trees
                    .scan_prefix(VaultTree::UserEmails, &prefix, after.as_deref(), PAGE)?;
            let full = page.len() == PAGE;
            after = page.last().map(|(k, _)| k.clone());
            keys.extend(page.into_iter().map(|(_, v)| v));
            if !full {
                break;
            }
        }
        keys.extend(self.trees.get(VaultTree::UserEmails, &bare)?);
        keys.sort();
        keys.dedup();
        let mut users = Vec::new();
        for key in keys {
            let Some(stored) = self.trees.get(VaultTree::Users, &key)? else {
                continue;
            };
            let Ok(user) = self.open_user(&key, &stored) else {
                tracing::error!("Failed to decrypt credentials for a user; skipped");
                continue;
            };
            if user
                .verified_email()
                .is_some_and(|e| e.eq_ignore_ascii_case(email))
            {
                users.push(user);
            }
        }
        Ok(users)
    }

    pub fn load_user(&self, user: &UserRef) -> Result<Option<UserCredentials>, VaultError> {
        let Some(key) = self.resolve(user)? else {
            return Ok(None);
        };
        match self.trees.get(VaultTree::Users, &key)? {
            Some(stored) => self.open_user(&key, &stored).map(Some),
            None => Ok(None),
        }
    }

    pub fn open_secret(&self, kind: &str, id: &str) -> Result<Option<Vec<u8>>, VaultError> {
        let key = keys::secret(kind, id);
        match self.trees.get(VaultTree::Secrets, &key)? {
            Some(stored) => self
                .codec
                .unwrap(&secret_kind(kind), &key, &stored)
                .map(Some)
                .map_err(|e| cipher(&key, e)),
            None => Ok(None),
        }
    }
}

/// The Vault's read side (see `actors::handle`): user credentials and
/// sealed secrets opened on the caller's thread. The codec is republished
/// by the Vault whenever a key rotation changes the keyring.
pub struct VaultReader {
    trees: ReadOnly<VaultTree>,
    codec: PublishedCodec,
}

impl VaultReader {
    pub fn new(trees: ReadOnly<VaultTree>, codec: PublishedCodec) -> Self {
        Self { trees, codec }
    }

    fn with<R>(&self, f: impl FnOnce(Sealed<'_>) -> R) -> R {
        let codec = self.codec.0.read().unwrap_or_else(|p| p.into_inner());
        f(Sealed {
            trees: self.trees.clone(),
            codec: &codec,
        })
    }

    pub fn load_user(&self, user: &UserRef) -> Result<Option<UserCredentials>, VaultError> {
        self.with(|v| v.load_user(user))
    }

    pub fn open_secret(&self, kind: &str, id: &str) -> Result<Option<Vec<u8>>, VaultError> {
        self.with(|v| v.open_secret(kind, id))
    }

    pub fn users_by_email(&self, email: &str) -> Result<Vec<UserCredentials>, VaultError> {
        self.with(|v| v.users_by_email(email))
    }
}

impl Reads<LoadUserCredentials> for VaultReader {
    fn read(&self, msg: LoadUserCredentials) -> Result<Option<UserCredentials>, VaultError> {
        self.load_user(&msg.0)
    }
}

impl Reads<OpenSecret> for VaultReader {
    fn read(&self, msg: OpenSecret) -> Result<Option<Vec<u8>>, VaultError> {
        self.open_secret(&msg.kind, &msg.id)
    }
}

impl Reads<DerivedKey> for VaultReader {
    fn read(&self, msg: DerivedKey) -> Result<Option<[u8; 32]>, VaultError> {
        let codec = self.codec.0.read().unwrap_or_else(|p| p.into_inner());
        Ok(codec.keyring().map(|k| k.derive_key(msg.purpose)))
    }
}

impl Reads<LoadUsersByVerifiedEmail> for VaultReader {
    fn read(&self, msg: LoadUsersByVerifiedEmail) -> Result<Vec<UserCredentials>, VaultError> {
        self.users_by_email(&msg.0)
    }
}

pub(super) fn secret_kind(kind: &str) -> String {
    format!("secret:{kind}")
}

pub(super) fn cipher(key: &[u8], error: CipherError) -> VaultError {
    VaultError::Cipher {
        record: String::from_utf8_lossy(key).into_owned(),
        error,
    }
}
