//! The Registry's logic over its tree, with no actix: registration, RFC
//! 7592 management, operator changes. The start-up count, the flood guard
//! and the purge live in the child modules.

mod count;
mod flood;
mod purge;
mod timeline;

use std::collections::{HashMap, VecDeque};

pub use self::flood::FloodGuard;
use crate::clock::UnixTime;
use crate::domain::{ClientId, SecretToken};
use crate::storage::{keys, Owned, OwnedBatch, RegistryTree, StoreError};

use super::messages::*;
use super::reader::RegistryReader;
use super::record::{ClientRecord, ClientView, ExpiryPolicy, USE_WRITE_INTERVAL};
use super::RegistryError;

pub const CLIENT_SECRET_PREFIX: &str = "mcp_cs_";
pub const REGISTRATION_TOKEN_PREFIX: &str = "mcp_rat_";
/// How many expired clients a full registry removes before refusing.
const INLINE_PURGE_LIMIT: usize = 1000;
/// How often a change is tried again after another instance changed the
/// same record first.
const ATTEMPTS: usize = 16;

/// The Registry's logic over the `clients` tree; the actor runs it on one
/// thread, so it is the tree's only writer.
pub struct RegistryCore {
    trees: Owned<RegistryTree>,
    expiry: ExpiryPolicy,
    max_clients: usize,
    flush_every_write: bool,
    /// Clients counted so far: all of them once `counting` is `None`.
    count: usize,
    /// While the start-up count runs (in steps, between requests): the last
    /// key counted. A change to a key after it is left for the count to see.
    counting: Option<Vec<u8>>,
    /// The lookups the HTTP side also makes, over the same tree.
    reader: RegistryReader,
    guard: FloodGuard,
    /// Registrations per origin since start, oldest first; entries that
    /// were used, removed or expired are dropped when the origin registers.
    /// (On a shared store each origin's registrations are a record every
    /// instance updates instead: see `flood.rs`.)
    by_origin: HashMap<String, VecDeque<String>>,
    /// Several instances share the store: the cap's count is a record they
    /// all update (tree `counters`), not this process's tally.
    shared: bool,
    /// Never-used registrations old enough to evict, oldest first (from the
    /// last scan of a full registry; each is checked again before eviction).
    candidates: VecDeque<(UnixTime, ClientId)>,
    /// No candidate can exist before this time (so a full registry of fresh
    /// registrations is not scanned again at every request).
    no_candidate_before: UnixTime,
}

impl RegistryCore {
    /// A core over the Registry's tree. Counting a million clients takes
    /// seconds: it runs in steps after the start (see `count_step`), not
    /// here.
    pub fn new(
        trees: Owned<RegistryTree>,
        expiry: ExpiryPolicy,
        max_clients: usize,
        flush_every_write: bool,
    ) -> Self {
        Self {
            reader: RegistryReader::new(trees.read_only(), expiry),
            trees,
            expiry,
            max_clients,
            flush_every_write,
            count: 0,
            counting: Some(Vec::new()),
            guard: FloodGuard::default(),
            by_origin: HashMap::new(),
            candidates: VecDeque::new(),
            no_candidate_before: UnixTime::MIN,
            shared: false,
        }
    }

    /// Counts clients in a record every instance updates (a store shared
    /// by several instances): the cap then holds across all of them.
    pub fn with_shared_count(mut self, shared: bool) -> Self {
        self.shared = shared;
        self
    }

    /// Turns the flood guard on (the server does; tools and tests may not).
    pub fn with_flood_guard(mut self, guard: FloodGuard) -> Self {
        self.guard = guard;
        self
    }

    /// A reader over this core's tree, for [`crate::actors::handle::Handle::read`].
    pub fn reader(&self) -> RegistryReader {
        RegistryReader::new(self.trees.read_only(), self.expiry)
    }

    fn load(&self, client_id: &str) -> Result<Option<ClientRecord>, RegistryError> {
        self.reader.load(client_id)
    }

    /// A live (stored and unexpired) client.
    fn live(&self, client_id: &str, now: UnixTime) -> Result<Option<ClientRecord>, RegistryError> {
        self.reader.live(client_id, now)
    }

    /// A stored client's record as stored: what a change swaps over.
    fn stored(&self, client_id: &str) -> Result<Option<Vec<u8>>, RegistryError> {
        Ok(self
            .trees
            .get(RegistryTree::Clients, &keys::client(client_id))?)
    }

    /// Writes a changed client over `stored`, the bytes read before the
    /// change was decided: when another instance changed the record
    /// meanwhile this fails with a conflict (see [`retrying`](Self::retrying))
    /// instead of undoing that change (an operator's `disabled`, say).
    fn save_over(&self, record: &ClientRecord, stored: Vec<u8>) -> Result<(), RegistryError> {
        let mut batch = OwnedBatch::new();
        batch.swap(
            RegistryTree::Clients,
            keys::client(&record.client_id),
            Some(stored),
            Some(record.encode()?),
        );
        self.trees.apply(batch)?;
        self.durable()
    }

    /// Runs `op` again when another instance changed a record it read
    /// (a conflict), a few times; then the conflict is the answer (503).
    fn retrying<T>(
        &mut self,
        mut op: impl FnMut(&mut Self) -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        let mut attempt = 0;
        loop {
            match op(self) {
                Err(RegistryError::Store(StoreError::Conflict { .. })) if attempt < ATTEMPTS => {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn durable(&self) -> Result<(), RegistryError> {
        if self.flush_every_write {
            self.trees.flush()?;
        }
        Ok(())
    }

    pub fn register(&mut self, msg: RegisterClient) -> Result<Registered, RegistryError> {
        if self.counting.is_some() {
            self.finish_count()?;
        }
        if let (Some(origin), false) = (&msg.origin, self.shared) {
            self.check_origin(origin, msg.now)?;
        }
        let client_id = loop {
            let id = ClientId::generate();
            if self.load(id.as_str())?.is_none() {
                break id;
            }
        };
        let client_secret = msg
            .metadata
            .auth_method
            .has_secret()
            .then(|| SecretToken::generate(CLIENT_SECRET_PREFIX));
        let registration_token = SecretToken::generate(REGISTRATION_TOKEN_PREFIX);
        let record = ClientRecord {
            client_id: client_id.clone(),
            secret_hash: client_secret.as_ref().map(SecretToken::hash),
            registration_token_hash: registration_token.hash(),
            metadata: msg.metadata,
            issued_at: msg.now,
            last_used_at: None,
            updated_at: msg.now,
            disabled: false,
            document: None,
        };
        let evicted = self.insert_new(&record, msg.origin.as_deref(), msg.now)?;
        if !self.shared {
            self.note_origin(msg.origin, &record.client_id);
        }
        Ok(Registered {
            client: record.view(self.expiry),
            evicted,
            client_secret,
            registration_token,
        })
    }

    /// Room for one more client: expired ones purged, else the oldest
    /// never-used one evicted (answered), else [`RegistryError::Full`].
    fn make_room(&mut self, now: UnixTime) -> Result<Option<ClientId>, RegistryError> {
        self.refresh_count()?;
        if self.count < self.max_clients {
            return Ok(None);
        }
        self.purge_expired(PurgeExpired {
            now,
            limit: INLINE_PURGE_LIMIT,
            after: None,
            scan: usize::MAX,
        })?;
        self.refresh_count()?;
        if self.count < self.max_clients {
            return Ok(None);
        }
        match self.evict_unused(now)? {
            Some(evicted) => Ok(Some(evicted)),
            None => Err(RegistryError::Full(self.max_clients)),
        }
    }

    /// Stores what a client's metadata document says (creating the client
    /// the first time its URL signs in), keeping an operator's `disabled`
    /// and the client's use. A public client: no secret, and a
    /// registration token nobody holds (RFC 7592 management is for
    /// registered clients).
    pub fn admit_document(
        &mut self,
        msg: AdmitDocumentClient,
    ) -> Result<ClientView, RegistryError> {
        self.retrying(|core| core.try_admit_document(&msg))
    }

    fn try_admit_document(
        &mut self,
        msg: &AdmitDocumentClient,
    ) -> Result<ClientView, RegistryError> {
        let stored = self.stored(&msg.client_id)?;
        let record = match self.load(&msg.client_id)? {
            Some(record) if record.disabled => return Ok(record.view(self.expiry)),
            Some(mut record) => {
                if record.is_expired(msg.now, self.expiry) {
                    // Expired but not purged yet: it starts again as new.
                    record.issued_at = msg.now;
                    record.last_used_at = None;
                }
                record.metadata = msg.metadata.clone();
                record.document = Some(msg.document);
                record.updated_at = msg.now;
                record.secret_hash = None;
                record
            }
            None => {
                let record = ClientRecord {
                    client_id: msg.client_id.clone(),
                    secret_hash: None,
                    registration_token_hash: SecretToken::generate(REGISTRATION_TOKEN_PREFIX)
                        .hash(),
                    metadata: msg.metadata.clone(),
                    issued_at: msg.now,
                    last_used_at: None,
                    updated_at: msg.now,
                    disabled: false,
                    document: Some(msg.document),
                };
                self.insert_new(&record, None, msg.now)?;
                return Ok(record.view(self.expiry));
            }
        };
        match stored {
            Some(stored) => self.save_over(&record, stored)?,
            // Removed meanwhile (by another instance): decide again.
            None => return Err(StoreError::Conflict { tree: "clients" }.into()),
        }
        Ok(record.view(self.expiry))
    }

    pub fn update(&mut self, msg: UpdateClient) -> Result<Updated, RegistryError> {
        self.retrying(|core| core.try_update(&msg))
    }

    fn try_update(&mut self, msg: &UpdateClient) -> Result<Updated, RegistryError> {
        let stored = self.stored(msg.client_id.as_str())?;
        let mut record =
            self.reader
                .authorized(&msg.client_id, &msg.registration_token, msg.now)?;
        if let Some(presented) = &msg.presented_secret {
            let matches = record
                .secret_hash
                .as_ref()
                .is_some_and(|h| h.verify(presented));
            if !matches {
                return Err(RegistryError::Metadata(
                    crate::domain::MetadataError::Invalid(
                        "client_secret does not match the client's current secret".into(),
                    ),
                ));
            }
        }
        let new_secret = match (
            record.secret_hash.is_some(),
            msg.metadata.auth_method.has_secret(),
        ) {
            (false, true) => Some(SecretToken::generate(CLIENT_SECRET_PREFIX)),
            _ => None,
        };
        if let Some(secret) = &new_secret {
            record.secret_hash = Some(secret.hash());
        }
        if !msg.metadata.auth_method.has_secret() {
            record.secret_hash = None;
        }
        record.metadata = msg.metadata.clone();
        record.updated_at = msg.now;
        let stored = stored.ok_or(RegistryError::InvalidToken)?;
        self.save_over(&record, stored)?;
        Ok(Updated {
            client: record.view(self.expiry),
            new_secret,
        })
    }

    pub fn delete(&mut self, msg: DeleteClient) -> Result<(), RegistryError> {
        self.reader
            .authorized(&msg.client_id, &msg.registration_token, msg.now)?;
        self.remove(msg.client_id.as_str()).map(|_| ())
    }

    #[cfg(test)]
    pub(super) fn delete_for_test(&mut self, client_id: &str) {
        self.remove(client_id).unwrap();
    }

    /// Removes a client and its timeline; answers whether it was stored.
    fn remove(&mut self, client_id: &str) -> Result<bool, RegistryError> {
        let key = keys::client(client_id);
        self.retrying(|core| match core.trees.get(RegistryTree::Clients, &key)? {
            Some(stored) => core.remove_stored(&key, stored).map(|()| true),
            None => {
                core.trees.remove(RegistryTree::Timelines, &key)?;
                Ok(false)
            }
        })
    }

    /// Removes the client stored under `key` if it is still `stored` (a
    /// conflict otherwise), with its timeline, and counts it out.
    pub(super) fn remove_stored(
        &mut self,
        key: &[u8],
        stored: Vec<u8>,
    ) -> Result<(), RegistryError> {
        let mut batch = OwnedBatch::new();
        batch.remove(RegistryTree::Timelines, key.to_vec());
        batch.swap(RegistryTree::Clients, key.to_vec(), Some(stored), None);
        if self.shared {
            let (n, counted) = self.shared_count()?;
            self.count_change(&mut batch, counted, n, -1);
            self.trees.apply(batch)?;
            self.count = n.saturating_sub(1);
        } else {
            self.trees.apply_in_order(batch)?;
            self.removed(key);
        }
        self.durable()
    }

    /// Stores a new client if the cap allows (making room first: see
    /// [`make_room`](Self::make_room)); answers the client evicted for it.
    /// On a shared store the count, the registering origin's record (see
    /// [`claim_origin`](Self::claim_origin)) and the client are written
    /// together, over the count and the origin's record as read, so the cap
    /// and the flood guard hold across every instance.
    fn insert_new(
        &mut self,
        record: &ClientRecord,
        origin: Option<&str>,
        now: UnixTime,
    ) -> Result<Option<ClientId>, RegistryError> {
        let key = keys::client(&record.client_id);
        if !self.shared {
            let evicted = self.make_room(now)?;
            self.trees
                .insert(RegistryTree::Clients, &key, record.encode()?)?;
            self.durable()?;
            self.added(&key);
            return Ok(evicted);
        }
        let mut evicted = None;
        self.retrying(|core| {
            let mut batch = OwnedBatch::new();
            if let Some(origin) = origin {
                // Before making room: a refused origin evicts nobody.
                core.claim_origin(&mut batch, origin, &record.client_id, now)?;
            }
            evicted = core.make_room(now)?.or(evicted.take());
            let (n, counted) = core.shared_count()?;
            if n >= core.max_clients {
                // Another instance took the room meanwhile: try again.
                return Err(StoreError::Conflict { tree: "counters" }.into());
            }
            batch.swap(
                RegistryTree::Clients,
                key.clone(),
                None,
                Some(record.encode()?),
            );
            core.count_change(&mut batch, counted, n, 1);
            core.trees.apply(batch)?;
            core.count = n + 1;
            core.durable()
        })
        .map_err(|e| match e {
            // Still full after every try: full, not busy.
            RegistryError::Store(StoreError::Conflict { tree: "counters" })
                if self.count >= self.max_clients =>
            {
                RegistryError::Full(self.max_clients)
            }
            e => e,
        })?;
        Ok(evicted)
    }

    /// Records a successful use, written at most every
    /// [`USE_WRITE_INTERVAL`] seconds per client.
    pub fn record_use(&mut self, msg: RecordClientUse) -> Result<(), RegistryError> {
        let Some(stored) = self.stored(msg.client_id.as_str())? else {
            return Err(RegistryError::InvalidClient);
        };
        let mut record = self
            .live(msg.client_id.as_str(), msg.now)?
            .ok_or(RegistryError::InvalidClient)?;
        let stale = record
            .last_used_at
            .is_none_or(|t| msg.now - t >= USE_WRITE_INTERVAL);
        if stale {
            record.last_used_at = Some(msg.now);
            match self.save_over(&record, stored) {
                // Changed by another instance meanwhile (maybe its own use
                // stamp): the stamp is a hint, the other change must stay.
                Err(RegistryError::Store(StoreError::Conflict { .. })) => {}
                other => other?,
            }
        }
        Ok(())
    }

    /// A page of clients (expired ones included) after the cursor, filtered.
    /// The cursor is the last key looked at, so a walk visits every client
    /// exactly once even while clients are added.
    pub fn list(&mut self, msg: ListClients) -> Result<ClientPage, RegistryError> {
        const PAGE: usize = 256;
        let mut out = ClientPage::default();
        let mut after = msg.after.map(String::into_bytes);
        loop {
            let page =
                self.trees
                    .scan_prefix(RegistryTree::Clients, b"", after.as_deref(), PAGE)?;
            let Some((last, _)) = page.last() else {
                out.next = None;
                return Ok(out);
            };
            after = Some(last.clone());
            for (key, bytes) in &page {
                let Ok(record) = ClientRecord::decode(bytes) else {
                    continue;
                };
                if msg
                    .filter
                    .keeps(&record, record.is_expired(msg.now, self.expiry))
                {
                    out.clients.push(record.view(self.expiry));
                }
                if out.clients.len() == msg.limit {
                    out.next = Some(String::from_utf8_lossy(key).into_owned());
                    return Ok(out);
                }
            }
            if page.len() < PAGE {
                out.next = None;
                return Ok(out);
            }
        }
    }

    pub fn set_disabled(&mut self, msg: SetClientDisabled) -> Result<bool, RegistryError> {
        self.retrying(|core| {
            let Some(stored) = core.stored(&msg.client_id)? else {
                return Ok(false);
            };
            let Some(mut record) = core.load(&msg.client_id)? else {
                return Ok(false);
            };
            record.disabled = msg.disabled;
            core.save_over(&record, stored)?;
            Ok(true)
        })
    }

    /// Deletes a client without its registration token (operators).
    pub fn remove_client(&mut self, msg: RemoveClient) -> Result<bool, RegistryError> {
        self.remove(&msg.client_id)
    }

    pub fn ping(&mut self, _: PingStore) -> Result<(), RegistryError> {
        Ok(self.trees.ping()?)
    }
}
