//! The Vault's logic over its own trees, with no actix: users' credentials
//! and sealed secrets. Key rotation and snapshots (with migration's export
//! and import) live in the child modules.

mod rotation;
mod snapshot;

use std::collections::HashSet;

pub use self::snapshot::{restore_snapshot, scan_all, Snapshot, VaultItem};
use super::cipher::Codec;
use super::keyfile::KeySource;
use super::messages::UserPage;
use super::reader::{secret_kind, PublishedCodec, Sealed, VaultReader, USER, USER_FORMAT};
use super::records::{UserCredentials, UserRef, UserSummary};
use super::VaultError;
use crate::clock::UnixTime;
use crate::storage::{codec, keys, Entry, Owned, OwnedBatch, StoreError, VaultTree};

/// Records read per page when the Vault walks one of its trees.
const PAGE: usize = 256;

/// The Vault's logic over its trees: sealing, user credentials, key
/// rotation, snapshots. The [`super::Vault`] actor runs it on its own thread.
pub struct VaultCore {
    trees: Owned<VaultTree>,
    codec: Codec,
    /// The codec as readers on other threads see it.
    published: PublishedCodec,
    key_source: Option<KeySource>,
    flush_every_write: bool,
    snapshot: Option<Snapshot>,
    /// The key file is shared by several instances on one database: a
    /// rotation keeps the old keys until it is run again (see `rotate`).
    keys_shared: bool,
}

impl VaultCore {
    /// A core with its own codec (tools and tests; readers made with
    /// [`VaultCore::reader`] follow its key rotations).
    pub fn new(
        trees: Owned<VaultTree>,
        codec: Codec,
        key_source: Option<KeySource>,
        flush_every_write: bool,
        snapshot: Option<Snapshot>,
    ) -> Self {
        let published = PublishedCodec::new(codec);
        Self::sharing(trees, published, key_source, flush_every_write, snapshot)
    }

    /// A core that starts from the codec `published` holds and publishes
    /// there every change of keyring, for the readers made over it.
    pub fn sharing(
        trees: Owned<VaultTree>,
        published: PublishedCodec,
        key_source: Option<KeySource>,
        flush_every_write: bool,
        snapshot: Option<Snapshot>,
    ) -> Self {
        Self {
            trees,
            codec: published.current(),
            published,
            key_source,
            flush_every_write,
            snapshot,
            keys_shared: false,
        }
    }

    /// The key file is shared by several instances on one database.
    pub fn with_shared_keys(mut self, shared: bool) -> Self {
        self.keys_shared = shared;
        self
    }

    /// Takes the key file's keyring when it differs from the one in use
    /// (another instance rotated); answers the new current key's id.
    /// Keys from `AUTH_ENCRYPTION_KEY`, or no encryption: nothing to read.
    pub fn reload_keys(&mut self, allow_insecure: bool) -> Result<Option<String>, VaultError> {
        let Some(crate::crypto::keyfile::KeySource::File(path)) = &self.key_source else {
            return Ok(None);
        };
        let Codec::Sealed(ring) = &self.codec else {
            return Ok(None);
        };
        let on_file = crate::crypto::keyfile::load(path, allow_insecure)?;
        let ids = |r: &crate::crypto::cipher::Keyring| {
            (
                r.current_id().to_owned(),
                r.keys().iter().map(|k| k.id.clone()).collect::<Vec<_>>(),
            )
        };
        if ids(&on_file) == ids(ring) {
            return Ok(None);
        }
        let current = on_file.current_id().to_owned();
        tracing::info!(
            key_id = current.as_str(),
            keys = on_file.keys().len(),
            "the key file changed (a rotation): sealing with its current key from now on"
        );
        self.codec = Codec::Sealed(on_file);
        self.publish();
        Ok(Some(current))
    }

    pub fn codec(&self) -> &Codec {
        &self.codec
    }

    /// Makes every write so far durable.
    pub fn flush(&self) -> Result<(), VaultError> {
        Ok(self.trees.flush()?)
    }

    fn durable(&self) -> Result<(), VaultError> {
        if self.flush_every_write {
            self.trees.flush()?;
        }
        Ok(())
    }

    /// The read side over this core's own codec.
    fn view(&self) -> Sealed<'_> {
        Sealed {
            trees: self.trees.read_only(),
            codec: &self.codec,
        }
    }

    /// The read side for other threads: shares these trees and follows key
    /// rotations.
    pub fn reader(&self) -> VaultReader {
        VaultReader::new(self.trees.read_only(), self.published.clone())
    }

    fn publish(&self) {
        self.published.publish(&self.codec);
    }

    fn open_user(&self, key: &[u8], stored: &[u8]) -> Result<UserCredentials, VaultError> {
        self.view().open_user(key, stored)
    }

    fn resolve(&self, user: &UserRef) -> Result<Option<Vec<u8>>, VaultError> {
        self.view().resolve(user)
    }

    /// Removes the email index entries of the user stored under `key`.
    fn unindex_email(
        &self,
        batch: &mut OwnedBatch<VaultTree>,
        email: &str,
        key: &[u8],
    ) -> Result<(), VaultError> {
        let view = self.view();
        batch.remove(VaultTree::UserEmails, view.email_entry(email, key));
        let bare = view.email_key(email);
        if self.trees.get(VaultTree::UserEmails, &bare)?.as_deref() == Some(key) {
            batch.remove(VaultTree::UserEmails, bare);
        }
        Ok(())
    }

    /// Stores (or replaces) a user's credentials under their issuer and
    /// subject; answers the user's id (kept from an earlier record, else
    /// new). A record written before issuers were recorded (keyed by the
    /// subject alone) is taken over, when its issuer is unknown or the same,
    /// and moved to the new key in the same batch.
    pub fn store_user(&mut self, mut creds: UserCredentials) -> Result<String, VaultError> {
        let view = self.view();
        let key = view.user_key(&creds.issuer, &creds.sub);
        let mut previous = match self.trees.get(VaultTree::Users, &key)? {
            Some(stored) => self.open_user(&key, &stored).ok().map(|p| (key.clone(), p)),
            None => None,
        };
        if previous.is_none() && !creds.issuer.is_empty() {
            let old_key = view.legacy_user_key(&creds.sub);
            if let Some(stored) = self.trees.get(VaultTree::Users, &old_key)? {
                if let Ok(old) = self.open_user(&old_key, &stored) {
                    if old.issuer.is_empty() || old.issuer == creds.issuer {
                        previous = Some((old_key, old));
                    }
                }
            }
        }
        if let Some((_, p)) = previous.as_ref().filter(|(_, p)| !p.uid.is_empty()) {
            creds.uid = p.uid.clone();
        } else if creds.uid.is_empty() {
            creds.uid = format!("u_{}", crate::domain::secret::random_b64(16));
        }
        let mut batch = OwnedBatch::new();
        if let Some((old_key, p)) = &previous {
            if let Some(old_email) = p.email.as_deref() {
                self.unindex_email(&mut batch, old_email, old_key)?;
            }
            if *old_key != key {
                batch.remove(VaultTree::Users, old_key.clone());
            }
        }
        batch.insert(
            VaultTree::UserIds,
            creds.uid.clone().into_bytes(),
            key.clone(),
        );
        if let Some(email) = creds.verified_email() {
            batch.insert(
                VaultTree::UserEmails,
                view.email_entry(email, &key),
                key.clone(),
            );
        }
        let sealed = self
            .codec
            .wrap(USER, &key, &codec::encode_format(USER_FORMAT, &creds)?);
        batch.insert(VaultTree::Users, key, sealed);
        self.trees.apply(batch)?;
        self.durable()?;
        tracing::info!(
            key_id = self.codec.keyring().map(|k| k.current_id()),
            "Saved encrypted credentials for a user"
        );
        Ok(creds.uid)
    }

    pub fn load_user(&self, user: &UserRef) -> Result<Option<UserCredentials>, VaultError> {
        self.view().load_user(user)
    }

    pub fn delete_user(&mut self, user: &UserRef) -> Result<bool, VaultError> {
        let Some(key) = self.resolve(user)? else {
            return Ok(false);
        };
        let Some(stored) = self.trees.get(VaultTree::Users, &key)? else {
            return Ok(false);
        };
        let mut batch = OwnedBatch::new();
        if let Ok(creds) = self.open_user(&key, &stored) {
            if let Some(email) = &creds.email {
                self.unindex_email(&mut batch, email, &key)?;
            }
            batch.remove(VaultTree::UserIds, creds.uid.into_bytes());
        }
        batch.remove(VaultTree::Users, key);
        self.trees.apply(batch)?;
        self.durable()?;
        Ok(true)
    }

    /// A page of users after `after` (a cursor from the previous page);
    /// unreadable records are reported by key and skipped.
    pub fn list_users(&self, after: Option<&[u8]>, limit: usize) -> Result<UserPage, VaultError> {
        let entries = self
            .trees
            .scan_prefix(VaultTree::Users, b"", after, limit)?;
        let mut page = UserPage {
            next: entries.last().map(|(k, _)| k.clone()),
            ..UserPage::default()
        };
        for (key, stored) in entries {
            match self.open_user(&key, &stored) {
                Ok(c) => page.users.push(UserSummary {
                    uid: c.uid,
                    issuer: c.issuer,
                    sub: c.sub,
                    email: c.email,
                    email_verified: c.email_verified,
                    has_refresh_token: c.tokens.refresh_token.is_some(),
                    updated_at: c.updated_at,
                }),
                Err(e) => {
                    tracing::error!(error = %e, "Failed to decrypt credentials for a user; record left in place");
                    page.unreadable
                        .push(String::from_utf8_lossy(&key).into_owned());
                }
            }
        }
        Ok(page)
    }

    pub fn seal_secret(
        &mut self,
        kind: &str,
        id: &str,
        plaintext: &[u8],
    ) -> Result<(), VaultError> {
        let key = keys::secret(kind, id);
        let sealed = self.codec.wrap(&secret_kind(kind), &key, plaintext);
        self.trees.insert(VaultTree::Secrets, &key, sealed)?;
        self.durable()
    }

    pub fn open_secret(&self, kind: &str, id: &str) -> Result<Option<Vec<u8>>, VaultError> {
        self.view().open_secret(kind, id)
    }

    /// Up to `limit` ids of secrets sealed under `kind`, after `after`.
    pub fn secret_ids(
        &self,
        kind: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, VaultError> {
        let prefix = keys::secret(kind, "");
        let after = after.map(|id| keys::secret(kind, id));
        Ok(self
            .trees
            .scan_prefix(VaultTree::Secrets, &prefix, after.as_deref(), limit)?
            .into_iter()
            .map(|(k, _)| String::from_utf8_lossy(&k[prefix.len()..]).into_owned())
            .collect())
    }

    /// Deletes the secrets of `kind` named in `ids`, in one batch; answers
    /// how many existed.
    pub fn delete_secrets(&mut self, kind: &str, ids: &[String]) -> Result<usize, VaultError> {
        let mut batch = OwnedBatch::new();
        let mut existing = 0;
        for id in ids {
            let key = keys::secret(kind, id);
            if self.trees.get(VaultTree::Secrets, &key)?.is_some() {
                existing += 1;
                batch.remove(VaultTree::Secrets, key);
            }
        }
        if !batch.is_empty() {
            self.trees.apply(batch)?;
            self.durable()?;
        }
        Ok(existing)
    }

    /// Deletes up to `limit` users whose subject is not in `keep` and whose
    /// credentials were last written before `idle_before`.
    pub fn purge_users(
        &mut self,
        keep: &HashSet<String>,
        idle_before: UnixTime,
        limit: usize,
    ) -> Result<usize, VaultError> {
        let mut doomed = Vec::new();
        for (key, stored) in self.scan_own(VaultTree::Users)? {
            if doomed.len() >= limit {
                break;
            }
            if let Ok(user) = self.open_user(&key, &stored) {
                if !keep.contains(&user.uid) && user.updated_at < idle_before {
                    doomed.push(user.uid);
                }
            }
        }
        for uid in &doomed {
            self.delete_user(&UserRef::Id(uid.clone()))?;
        }
        Ok(doomed.len())
    }

    /// Every entry of one of the Vault's trees.
    fn scan_own(&self, tree: VaultTree) -> Result<Vec<Entry>, VaultError> {
        Ok(collect_pages(|after, limit| {
            self.trees.scan_prefix(tree, b"", after, limit)
        })?)
    }

    /// Calls `f` with each page of `tree` in key order until it answers `false`.
    fn for_each_page(
        &self,
        tree: VaultTree,
        mut f: impl FnMut(&[Entry]) -> Result<bool, VaultError>,
    ) -> Result<(), VaultError> {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = self.trees.scan_prefix(tree, b"", after.as_deref(), PAGE)?;
            let Some((last, _)) = page.last() else {
                return Ok(());
            };
            after = Some(last.clone());
            if !f(&page)? || page.len() < PAGE {
                return Ok(());
            }
        }
    }
}

/// Every entry that `scan` (after, limit) hands out, page by page.
fn collect_pages(
    mut scan: impl FnMut(Option<&[u8]>, usize) -> Result<Vec<Entry>, StoreError>,
) -> Result<Vec<Entry>, StoreError> {
    const BIG_PAGE: usize = 4096;
    let mut out = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = scan(after.as_deref(), BIG_PAGE)?;
        let full = page.len() == BIG_PAGE;
        after = page.last().map(|(k, _)| k.clone());
        out.extend(page);
        if !full {
            return Ok(out);
        }
    }
}
