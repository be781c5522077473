//! The Vault's behaviour over real storage: sealing at rest, lookups,
//! unreadable records, rotation (whole and interrupted), snapshots, records
//! of the previous format. Reads go through the reader, as in production.

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::Arc;

use super::cipher::{sealed_key_id, Codec, Keyring};
use super::keyfile::{self, KeySource};
use super::*;
use crate::storage::{MemoryStore, Owned, ReadStore, SharedStore, SledStore, Tree};

mod formats;
mod rotation;
mod snapshot;
mod users;

const ISS: &str = "https://issuer.example";

fn creds(sub: &str, email: &str, token: &str) -> UserCredentials {
    UserCredentials {
        uid: String::new(),
        issuer: ISS.into(),
        sub: sub.into(),
        email: Some(email.into()),
        email_verified: true,
        tokens: UpstreamTokens {
            access_token: format!("ya29.{token}"),
            refresh_token: Some(format!("1//{token}")),
            expires_at: Some(1_800_000_000),
            scopes: vec!["openid".into()],
            id_token: None,
        },
        created_at: 1,
        updated_at: 2,
    }
}

fn subject(sub: impl Into<String>) -> UserRef {
    UserRef::Subject {
        issuer: ISS.into(),
        sub: sub.into(),
    }
}

/// A Vault core over a store the test also holds, to look at or alter the
/// raw records. Lookups go through the core's reader, as the HTTP side's do.
struct TestVault {
    core: VaultCore,
    store: SharedStore,
}

impl TestVault {
    fn over(store: SharedStore, codec: Codec, key_source: Option<KeySource>) -> Self {
        let core = VaultCore::new(Owned::new(store.clone()), codec, key_source, true, None);
        Self { core, store }
    }

    fn store(&self) -> &SharedStore {
        &self.store
    }

    fn load_user(&self, user: &UserRef) -> Result<Option<UserCredentials>, VaultError> {
        self.core.reader().load_user(user)
    }

    fn users_by_email(&self, email: &str) -> Result<Vec<UserCredentials>, VaultError> {
        self.core.reader().users_by_email(email)
    }

    fn open_secret(&self, kind: &str, id: &str) -> Result<Option<Vec<u8>>, VaultError> {
        self.core.reader().open_secret(kind, id)
    }
}

impl Deref for TestVault {
    type Target = VaultCore;

    fn deref(&self) -> &VaultCore {
        &self.core
    }
}

impl DerefMut for TestVault {
    fn deref_mut(&mut self) -> &mut VaultCore {
        &mut self.core
    }
}

fn sealed_core(dir: &Path) -> TestVault {
    let key_path = dir.join("key");
    let ring = keyfile::load_or_create(&key_path, false, 0).unwrap();
    let store: SharedStore = Arc::new(SledStore::open(&dir.join("db")).unwrap());
    TestVault::over(store, Codec::Sealed(ring), Some(KeySource::File(key_path)))
}
