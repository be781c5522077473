//! The MEMORY_WITH_BACKUP snapshot (every tree, sealed as one blob) and
//! the logical export and import that `migrate-storage` uses.

use std::path::{Path, PathBuf};

use super::{collect_pages, VaultCore};
use crate::actors::vault::cipher::Codec;
use crate::actors::vault::keyfile;
use crate::actors::vault::reader::secret_kind;
use crate::actors::vault::records::{UserCredentials, UserRef};
use crate::actors::vault::VaultError;
use crate::storage::{codec, Batch, Entry, ReadStore, SharedStore, Tree, VaultTree};

const SNAPSHOT_KIND: &str = "snapshot";
const SNAPSHOT_AAD: &[u8] = b"drawbridge.snapshot";

/// Where the snapshot goes, and the whole store it copies: the one place
/// the Vault reads trees it does not own (read-only).
#[derive(Clone)]
pub struct Snapshot {
    path: PathBuf,
    store: ReadStore,
}

impl Snapshot {
    pub fn new(path: PathBuf, store: ReadStore) -> Self {
        Self { path, store }
    }
}

/// One logical vault record, for migration between storage modes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaultItem {
    User(UserCredentials),
    Secret {
        kind: String,
        id: String,
        bytes: Vec<u8>,
    },
}

impl VaultCore {
    /// Writes every tree, sealed as one blob, atomically to the snapshot file.
    pub fn write_snapshot(&self) -> Result<usize, VaultError> {
        let Some(Snapshot { path, store }) = &self.snapshot else {
            return Ok(0);
        };
        let Codec::Sealed(ring) = &self.codec else {
            return Err(VaultError::NoEncryption);
        };
        let mut trees: Vec<(String, Vec<Entry>)> = Vec::new();
        let mut records = 0;
        for tree in Tree::ALL {
            let entries = collect_pages(|after, limit| store.scan_prefix(tree, b"", after, limit))?;
            records += entries.len();
            trees.push((tree.name().to_owned(), entries));
        }
        let plain = codec::encode(&trees)?;
        let sealed = ring.seal(SNAPSHOT_KIND, SNAPSHOT_AAD, &plain);
        keyfile::write_private_atomically(path, &sealed)
            .map_err(|e| VaultError::Snapshot(format!("{}: {e}", path.display())))?;
        tracing::debug!(records, "snapshot written");
        Ok(records)
    }

    /// Every logical record, for migration.
    pub fn export(&self) -> Result<(Vec<VaultItem>, Vec<String>), VaultError> {
        let mut items = Vec::new();
        let mut unreadable = Vec::new();
        for (key, stored) in self.scan_own(VaultTree::Users)? {
            match self.open_user(&key, &stored) {
                Ok(c) => items.push(VaultItem::User(c)),
                Err(e) => unreadable.push(format!("users/{}: {e}", String::from_utf8_lossy(&key))),
            }
        }
        for (key, stored) in self.scan_own(VaultTree::Secrets)? {
            let name = String::from_utf8_lossy(&key).into_owned();
            let Some((kind, id)) = name.split_once('/') else {
                unreadable.push(format!("secrets/{name}: malformed key"));
                continue;
            };
            match self.codec.unwrap(&secret_kind(kind), &key, &stored) {
                Ok(bytes) => items.push(VaultItem::Secret {
                    kind: kind.to_owned(),
                    id: id.to_owned(),
                    bytes,
                }),
                Err(e) => unreadable.push(format!("secrets/{name}: {e}")),
            }
        }
        Ok((items, unreadable))
    }

    /// Stores `item` unless an identical record is already there; answers
    /// whether it wrote.
    pub fn import(&mut self, item: VaultItem) -> Result<bool, VaultError> {
        match item {
            VaultItem::User(c) => {
                if self
                    .load_user(&UserRef::Subject {
                        issuer: c.issuer.clone(),
                        sub: c.sub.clone(),
                    })
                    .ok()
                    .flatten()
                    .as_ref()
                    == Some(&c)
                {
                    return Ok(false);
                }
                self.store_user(c)?;
            }
            VaultItem::Secret { kind, id, bytes } => {
                if self.open_secret(&kind, &id).ok().flatten().as_deref() == Some(&bytes[..]) {
                    return Ok(false);
                }
                self.seal_secret(&kind, &id, &bytes)?;
            }
        }
        Ok(true)
    }
}

/// Every entry of `tree` in `store` (a whole store: migration, snapshots).
pub fn scan_all(store: &SharedStore, tree: Tree) -> Result<Vec<Entry>, VaultError> {
    Ok(collect_pages(|after, limit| {
        store.scan_prefix(tree, b"", after, limit)
    })?)
}

/// Reads a snapshot written by [`VaultCore::write_snapshot`] into `store`.
pub fn restore_snapshot(
    path: &Path,
    codec: &Codec,
    store: &SharedStore,
) -> Result<usize, VaultError> {
    let sealed = std::fs::read(path)
        .map_err(|e| VaultError::Snapshot(format!("{}: {e}", path.display())))?;
    let ring = codec.keyring().ok_or(VaultError::NoEncryption)?;
    let plain = ring
        .open(SNAPSHOT_KIND, SNAPSHOT_AAD, &sealed)
        .map_err(|e| VaultError::Snapshot(format!("{} cannot be opened: {e}", path.display())))?;
    let trees: Vec<(String, Vec<Entry>)> = codec::decode_snapshot(&plain)?;
    let mut count = 0;
    for (name, entries) in trees {
        let tree = Tree::from_name(&name)
            .ok_or_else(|| VaultError::Snapshot(format!("unknown tree `{name}` in snapshot")))?;
        let mut batch = Batch::new();
        for (k, v) in entries {
            batch.insert(tree, k, v);
            count += 1;
        }
        store.apply(batch)?;
    }
    Ok(count)
}
