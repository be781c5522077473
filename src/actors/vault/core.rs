use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::cipher::{sealed_key_id, CipherError, Codec, DataKey};
use super::keyfile::{self, KeySource};
use super::records::{UserCredentials, UserCredentialsV1, UserRef, UserSummary};
use super::VaultError;
use crate::clock::UnixTime;
use crate::storage::{codec, keys, Batch, Entry, ReadStore, SharedStore, Tree};

const USER: &str = "user";
/// Record format of [`UserCredentials`] (format 1 is [`UserCredentialsV1`]).
const USER_FORMAT: u8 = 2;
const SNAPSHOT_KIND: &str = "snapshot";
const SNAPSHOT_AAD: &[u8] = b"drawbridge.snapshot";
const PAGE: usize = 256;

/// The Vault's logic over a store: sealing, user credentials, key rotation,
/// snapshots. The [`super::Vault`] actor runs it on its own thread.
pub struct VaultCore {
    store: SharedStore,
    codec: Codec,
    /// The codec as readers on other threads see it.
    published: Arc<RwLock<Codec>>,
    key_source: Option<KeySource>,
    flush_every_write: bool,
    snapshot: Option<PathBuf>,
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

/// Reads of sealed records: a store and the codec to open them with.
struct Sealed<'a> {
    store: ReadStore,
    codec: &'a Codec,
}

impl Sealed<'_> {
    /// Key of a user record: the blind index of issuer and subject; a
    /// record of unknown issuer (written before issuers were recorded)
    /// keeps its old key, the blind index of the subject alone.
    fn user_key(&self, issuer: &str, sub: &str) -> Vec<u8> {
        if issuer.is_empty() {
            return self.legacy_user_key(sub);
        }
        // The issuer's length first, so no issuer/subject pair can spell another.
        let subject = format!("{}:{issuer}\n{sub}", issuer.len());
        self.codec.identity_key("subject", &subject).into_bytes()
    }

    fn legacy_user_key(&self, sub: &str) -> Vec<u8> {
        self.codec.identity_key("sub", sub).into_bytes()
    }

    /// Key of the email index entry that points to `user_key`. (Format 1
    /// records were indexed under the bare email key, one user per email.)
    fn email_entry(&self, email: &str, user_key: &[u8]) -> Vec<u8> {
        let mut k = self.email_key(email);
        k.push(b'/');
        k.extend_from_slice(user_key);
        k
    }

    fn email_key(&self, email: &str) -> Vec<u8> {
        self.codec
            .identity_key("email", &email.to_lowercase())
            .into_bytes()
    }

    fn resolve(&self, user: &UserRef) -> Result<Option<Vec<u8>>, VaultError> {
        match user {
            UserRef::Subject { issuer, sub } => Ok(Some(self.user_key(issuer, sub))),
            UserRef::Id(uid) => Ok(self.store.get(Tree::UserIds, uid.as_bytes())?),
        }
    }

    fn open_user(&self, key: &[u8], stored: &[u8]) -> Result<UserCredentials, VaultError> {
        let plain = self
            .codec
            .unwrap(USER, key, stored)
            .map_err(|e| cipher(key, e))?;
        if codec::format_of(&plain) == Some(USER_FORMAT) {
            return Ok(codec::decode_format(Tree::Users, USER_FORMAT, &plain)?);
        }
        let old: UserCredentialsV1 = codec::decode(Tree::Users, &plain)?;
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
            let page = self
                .store
                .scan_prefix(Tree::UserEmails, &prefix, after.as_deref(), PAGE)?;
            let full = page.len() == PAGE;
            after = page.last().map(|(k, _)| k.clone());
            keys.extend(page.into_iter().map(|(_, v)| v));
            if !full {
                break;
            }
        }
        keys.extend(self.store.get(Tree::UserEmails, &bare)?);
        keys.sort();
        keys.dedup();
        let mut users = Vec::new();
        for key in keys {
            let Some(stored) = self.store.get(Tree::Users, &key)? else {
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
        match self.store.get(Tree::Users, &key)? {
            Some(stored) => self.open_user(&key, &stored).map(Some),
            None => Ok(None),
        }
    }

    pub fn open_secret(&self, kind: &str, id: &str) -> Result<Option<Vec<u8>>, VaultError> {
        let key = keys::secret(kind, id);
        match self.store.get(Tree::Secrets, &key)? {
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
    store: ReadStore,
    codec: Arc<RwLock<Codec>>,
}

impl VaultReader {
    fn with<R>(&self, f: impl FnOnce(Sealed<'_>) -> R) -> R {
        let codec = self.codec.read().unwrap_or_else(|p| p.into_inner());
        f(Sealed {
            store: self.store.clone(),
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

impl VaultCore {
    pub fn new(
        store: SharedStore,
        codec: Codec,
        key_source: Option<KeySource>,
        flush_every_write: bool,
        snapshot: Option<PathBuf>,
    ) -> Self {
        Self {
            store,
            published: Arc::new(RwLock::new(codec.clone())),
            codec,
            key_source,
            flush_every_write,
            snapshot,
        }
    }

    pub fn codec(&self) -> &Codec {
        &self.codec
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    fn durable(&self) -> Result<(), VaultError> {
        if self.flush_every_write {
            self.store.flush()?;
        }
        Ok(())
    }

    /// The read side over this core's own codec.
    fn view(&self) -> Sealed<'_> {
        Sealed {
            store: ReadStore::new(self.store.clone()),
            codec: &self.codec,
        }
    }

    /// The read side for other threads: shares this store and follows key
    /// rotations.
    pub fn reader(&self) -> VaultReader {
        VaultReader {
            store: ReadStore::new(self.store.clone()),
            codec: self.published.clone(),
        }
    }

    fn publish(&self) {
        *self.published.write().unwrap_or_else(|p| p.into_inner()) = self.codec.clone();
    }

    fn open_user(&self, key: &[u8], stored: &[u8]) -> Result<UserCredentials, VaultError> {
        self.view().open_user(key, stored)
    }

    fn resolve(&self, user: &UserRef) -> Result<Option<Vec<u8>>, VaultError> {
        self.view().resolve(user)
    }

    /// Removes the email index entries of the user stored under `key`.
    fn unindex_email(&self, batch: &mut Batch, email: &str, key: &[u8]) -> Result<(), VaultError> {
        let view = self.view();
        batch.remove(Tree::UserEmails, view.email_entry(email, key));
        let bare = view.email_key(email);
        if self.store.get(Tree::UserEmails, &bare)?.as_deref() == Some(key) {
            batch.remove(Tree::UserEmails, bare);
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
        let mut previous = match self.store.get(Tree::Users, &key)? {
            Some(stored) => self.open_user(&key, &stored).ok().map(|p| (key.clone(), p)),
            None => None,
        };
        if previous.is_none() && !creds.issuer.is_empty() {
            let old_key = view.legacy_user_key(&creds.sub);
            if let Some(stored) = self.store.get(Tree::Users, &old_key)? {
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
        let mut batch = Batch::new();
        if let Some((old_key, p)) = &previous {
            if let Some(old_email) = p.email.as_deref() {
                self.unindex_email(&mut batch, old_email, old_key)?;
            }
            if *old_key != key {
                batch.remove(Tree::Users, old_key.clone());
            }
        }
        batch.insert(Tree::UserIds, creds.uid.clone().into_bytes(), key.clone());
        if let Some(email) = creds.verified_email() {
            batch.insert(Tree::UserEmails, view.email_entry(email, &key), key.clone());
        }
        let sealed = self
            .codec
            .wrap(USER, &key, &codec::encode_format(USER_FORMAT, &creds)?);
        batch.insert(Tree::Users, key, sealed);
        self.store.apply(batch)?;
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
        let Some(stored) = self.store.get(Tree::Users, &key)? else {
            return Ok(false);
        };
        let mut batch = Batch::new();
        if let Ok(creds) = self.open_user(&key, &stored) {
            if let Some(email) = &creds.email {
                self.unindex_email(&mut batch, email, &key)?;
            }
            batch.remove(Tree::UserIds, creds.uid.into_bytes());
        }
        batch.remove(Tree::Users, key);
        self.store.apply(batch)?;
        self.durable()?;
        Ok(true)
    }

    /// A page of users after `after` (a cursor from the previous page);
    /// unreadable records are reported by key and skipped.
    pub fn list_users(&self, after: Option<&[u8]>, limit: usize) -> Result<UserPage, VaultError> {
        let entries = self.store.scan_prefix(Tree::Users, b"", after, limit)?;
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
        self.store.insert(Tree::Secrets, &key, sealed)?;
        self.durable()
    }

    pub fn open_secret(&self, kind: &str, id: &str) -> Result<Option<Vec<u8>>, VaultError> {
        self.view().open_secret(kind, id)
    }

    pub fn users_by_email(&self, email: &str) -> Result<Vec<UserCredentials>, VaultError> {
        self.view().users_by_email(email)
    }

    pub fn delete_secret(&mut self, kind: &str, id: &str) -> Result<bool, VaultError> {
        let removed = self
            .store
            .remove(Tree::Secrets, &keys::secret(kind, id))?
            .is_some();
        self.durable()?;
        Ok(removed)
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
            .store
            .scan_prefix(Tree::Secrets, &prefix, after.as_deref(), limit)?
            .into_iter()
            .map(|(k, _)| String::from_utf8_lossy(&k[prefix.len()..]).into_owned())
            .collect())
    }

    /// Deletes the secrets of `kind` named in `ids`, in one batch; answers
    /// how many existed.
    pub fn delete_secrets(&mut self, kind: &str, ids: &[String]) -> Result<usize, VaultError> {
        let mut batch = Batch::new();
        let mut existing = 0;
        for id in ids {
            let key = keys::secret(kind, id);
            if self.store.get(Tree::Secrets, &key)?.is_some() {
                existing += 1;
                batch.remove(Tree::Secrets, key);
            }
        }
        if !batch.is_empty() {
            self.store.apply(batch)?;
            self.durable()?;
        }
        Ok(existing)
    }

    /// Deletes up to `limit` users whose subject is not in `keep` and whose
    /// credentials were last written before `idle_before`.
    pub fn purge_users(
        &mut self,
        keep: &std::collections::HashSet<String>,
        idle_before: UnixTime,
        limit: usize,
    ) -> Result<usize, VaultError> {
        let mut doomed = Vec::new();
        for (key, stored) in scan_all(&self.store, Tree::Users)? {
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

    // ---- key rotation ----

    /// Step 1: adds a new current key and persists the keyring before any
    /// record uses it. Does nothing when a rotation is already under way
    /// (the keyring holds more than one key).
    pub fn begin_rotation(&mut self, now: UnixTime) -> Result<String, VaultError> {
        let path = self.rotatable_key_file()?;
        let Codec::Sealed(ring) = &mut self.codec else {
            return Err(VaultError::NoEncryption);
        };
        if ring.keys().len() == 1 {
            let mut next = ring.clone();
            next.add_current(DataKey::generate(now));
            keyfile::save(&path, &next)?;
            *ring = next;
        }
        let current = ring.current_id().to_owned();
        self.publish();
        Ok(current)
    }

    /// Step 2: re-seals up to `limit` records under the current key.
    pub fn reseal(
        &mut self,
        limit: usize,
        report: &mut RotationReport,
    ) -> Result<usize, VaultError> {
        let Codec::Sealed(ring) = &self.codec else {
            return Err(VaultError::NoEncryption);
        };
        let current = ring.current_id().to_owned();
        let mut done = 0;
        for tree in [Tree::Users, Tree::Secrets] {
            for_each_page(&self.store, tree, |page| {
                let mut batch = Batch::new();
                for (key, stored) in page {
                    if sealed_key_id(stored).is_ok_and(|id| id == current) {
                        report.already_current += 1;
                        continue;
                    }
                    if done >= limit {
                        break;
                    }
                    let kind = kind_of(tree, key);
                    match self.codec.unwrap(&kind, key, stored) {
                        Ok(plain) => {
                            batch.insert(tree, key.clone(), self.codec.wrap(&kind, key, &plain));
                            done += 1;
                        }
                        Err(e) => {
                            tracing::error!(error = %e, tree = tree.name(), "record cannot be re-sealed; left in place");
                            report.unreadable.push(format!(
                                "{}/{}",
                                tree.name(),
                                String::from_utf8_lossy(key)
                            ));
                        }
                    }
                }
                if !batch.is_empty() {
                    self.store.apply(batch)?;
                }
                Ok(done < limit)
            })?;
        }
        self.store.flush()?;
        report.resealed += done;
        Ok(done)
    }

    /// Records still sealed under a key other than the current one.
    pub fn records_on_old_keys(&self) -> Result<usize, VaultError> {
        let Codec::Sealed(ring) = &self.codec else {
            return Ok(0);
        };
        let mut count = 0;
        for tree in [Tree::Users, Tree::Secrets] {
            for_each_page(&self.store, tree, |page| {
                count += page
                    .iter()
                    .filter(|(_, v)| sealed_key_id(v).is_ok_and(|id| id != ring.current_id()))
                    .count();
                Ok(true)
            })?;
        }
        Ok(count)
    }

    /// Step 3: retires the old keys once no record uses them.
    pub fn finish_rotation(&mut self) -> Result<Vec<String>, VaultError> {
        if self.records_on_old_keys()? > 0 {
            return Ok(vec![]);
        }
        let path = self.rotatable_key_file()?;
        let Codec::Sealed(ring) = &mut self.codec else {
            return Err(VaultError::NoEncryption);
        };
        let mut next = ring.clone();
        let retired = next.retire_old_keys();
        if !retired.is_empty() {
            keyfile::save(&path, &next)?;
            *ring = next;
            self.publish();
        }
        Ok(retired)
    }

    /// A whole rotation (or the rest of an interrupted one), then a fresh
    /// snapshot when this store has one.
    pub fn rotate(&mut self, now: UnixTime) -> Result<RotationReport, VaultError> {
        let mut report = RotationReport {
            new_key_id: self.begin_rotation(now)?,
            ..Default::default()
        };
        self.reseal(usize::MAX, &mut report)?;
        report.retired_keys = self.finish_rotation()?;
        if self.snapshot.is_some() {
            self.write_snapshot()?;
        }
        Ok(report)
    }

    fn rotatable_key_file(&self) -> Result<PathBuf, VaultError> {
        match &self.key_source {
            Some(KeySource::File(p)) => Ok(p.clone()),
            Some(KeySource::Env) => Err(VaultError::Rotation(
                "the key comes from AUTH_ENCRYPTION_KEY; rotate by migrating to a key file".into(),
            )),
            None => Err(VaultError::Rotation(
                "this storage mode keeps no key to rotate".into(),
            )),
        }
    }

    // ---- snapshots (MEMORY_WITH_BACKUP) ----

    /// Writes every tree, sealed as one blob, atomically to the snapshot file.
    pub fn write_snapshot(&self) -> Result<usize, VaultError> {
        let Some(path) = &self.snapshot else {
            return Ok(0);
        };
        let Codec::Sealed(ring) = &self.codec else {
            return Err(VaultError::NoEncryption);
        };
        let mut trees: Vec<(String, Vec<Entry>)> = Vec::new();
        let mut records = 0;
        for tree in Tree::ALL {
            let entries = scan_all(&self.store, tree)?;
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
        for (key, stored) in scan_all(&self.store, Tree::Users)? {
            match self.open_user(&key, &stored) {
                Ok(c) => items.push(VaultItem::User(c)),
                Err(e) => unreadable.push(format!("users/{}: {e}", String::from_utf8_lossy(&key))),
            }
        }
        for (key, stored) in scan_all(&self.store, Tree::Secrets)? {
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

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UserPage {
    pub users: Vec<UserSummary>,
    pub unreadable: Vec<String>,
    pub next: Option<Vec<u8>>,
}

fn secret_kind(kind: &str) -> String {
    format!("secret:{kind}")
}

fn kind_of(tree: Tree, key: &[u8]) -> String {
    match tree {
        Tree::Secrets => {
            let name = String::from_utf8_lossy(key);
            secret_kind(name.split_once('/').map_or("", |(k, _)| k))
        }
        _ => USER.to_owned(),
    }
}

fn cipher(key: &[u8], error: CipherError) -> VaultError {
    VaultError::Cipher {
        record: String::from_utf8_lossy(key).into_owned(),
        error,
    }
}

/// Calls `f` with each page of `tree` in key order until it answers `false`.
fn for_each_page(
    store: &SharedStore,
    tree: Tree,
    mut f: impl FnMut(&[Entry]) -> Result<bool, VaultError>,
) -> Result<(), VaultError> {
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = store.scan_prefix(tree, b"", after.as_deref(), PAGE)?;
        let Some((last, _)) = page.last() else {
            return Ok(());
        };
        after = Some(last.clone());
        if !f(&page)? || page.len() < PAGE {
            return Ok(());
        }
    }
}

pub fn scan_all(store: &SharedStore, tree: Tree) -> Result<Vec<Entry>, VaultError> {
    let mut out = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = store.scan_prefix(tree, b"", after.as_deref(), 4096)?;
        let full = page.len() == 4096;
        after = page.last().map(|(k, _)| k.clone());
        out.extend(page);
        if !full {
            return Ok(out);
        }
    }
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
