use crate::clock::UnixTime;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::domain::{ClientId, SecretToken};
use crate::storage::{codec, keys, Batch, SharedStore, StoreError, Tree};

use super::messages::*;
use super::reader::RegistryReader;
use super::record::{ClientRecord, ClientView, ExpiryPolicy, USE_WRITE_INTERVAL};
use super::RegistryError;

pub const CLIENT_SECRET_PREFIX: &str = "mcp_cs_";
pub const REGISTRATION_TOKEN_PREFIX: &str = "mcp_rat_";
/// How many expired clients a full registry removes before refusing.
const INLINE_PURGE_LIMIT: usize = 1000;

/// What keeps one address from filling the registry: a cap on the
/// never-used registrations each origin holds, and eviction of the oldest
/// never-used registration when the registry is full.
#[derive(Debug, Clone, Copy, Default)]
pub struct FloodGuard {
    /// Never-used registrations one origin may hold; 0: no cap.
    pub max_unused_per_origin: usize,
    /// A full registry evicts a never-used registration at least this many
    /// seconds old instead of refusing; `None`: never.
    pub evict_unused_after: Option<i64>,
}

/// How many eviction candidates one scan of a full registry remembers.
const EVICTION_CANDIDATES: usize = 64;

pub struct RegistryCore {
    store: SharedStore,
    expiry: ExpiryPolicy,
    max_clients: usize,
    flush_every_write: bool,
    /// Clients counted so far: all of them once `counting` is `None`.
    count: usize,
    /// While the start-up count runs (in steps, between requests): the last
    /// key counted. A change to a key after it is left for the count to see.
    counting: Option<Vec<u8>>,
    /// Lookups and credential checks, shared with the HTTP side.
    reader: Arc<RegistryReader>,
    guard: FloodGuard,
    /// Registrations per origin since start, oldest first; entries that
    /// were used, removed or expired are dropped when the origin registers.
    by_origin: HashMap<String, VecDeque<String>>,
    /// Never-used registrations old enough to evict, oldest first (from the
    /// last scan of a full registry; each is checked again before eviction).
    candidates: VecDeque<(UnixTime, String)>,
    /// No candidate can exist before this time (so a full registry of fresh
    /// registrations is not scanned again at every request).
    no_candidate_before: UnixTime,
}

impl RegistryCore {
    pub fn open(
        store: SharedStore,
        expiry: ExpiryPolicy,
        max_clients: usize,
        flush_every_write: bool,
    ) -> Result<Self, StoreError> {
        // Counting a million clients takes seconds: it runs in steps after
        // the start (see `count_step`), not before the server is ready.
        let count = 0;
        let store_for_reader = store.clone();
        Ok(Self {
            store,
            expiry,
            max_clients,
            flush_every_write,
            count,
            counting: Some(Vec::new()),
            reader: Arc::new(RegistryReader::new(store_for_reader, expiry)),
            guard: FloodGuard::default(),
            by_origin: HashMap::new(),
            candidates: VecDeque::new(),
            no_candidate_before: UnixTime::MIN,
        })
    }

    /// Turns the flood guard on (the server does; tools and tests may not).
    pub fn with_flood_guard(mut self, guard: FloodGuard) -> Self {
        self.guard = guard;
        self
    }

    /// Whether `record` still counts against its origin: stored, never used
    /// and not expired.
    fn pending(&self, client_id: &str, now: UnixTime) -> Result<bool, RegistryError> {
        Ok(self
            .live(client_id, now)?
            .is_some_and(|r| r.last_used_at.is_none()))
    }

    /// Refuses an origin that already holds its cap of never-used
    /// registrations (after dropping those used, removed or expired).
    fn check_origin(&mut self, origin: &str, now: UnixTime) -> Result<(), RegistryError> {
        let cap = self.guard.max_unused_per_origin;
        if cap == 0 {
            return Ok(());
        }
        let Some(held) = self.by_origin.remove(origin) else {
            return Ok(());
        };
        let mut kept = VecDeque::with_capacity(held.len());
        for id in held {
            if self.pending(&id, now)? {
                kept.push_back(id);
            }
        }
        let full = kept.len() >= cap;
        if !kept.is_empty() {
            self.by_origin.insert(origin.to_owned(), kept);
        }
        if full {
            return Err(RegistryError::TooManyUnused(cap));
        }
        Ok(())
    }

    fn note_origin(&mut self, origin: Option<String>, client_id: &str) {
        if self.guard.max_unused_per_origin == 0 {
            return;
        }
        if let Some(origin) = origin {
            // Bound the map however many addresses appear: forget origins
            // whose registrations are all gone (checked lazily, in bulk).
            if self.by_origin.len() >= 100_000 && !self.by_origin.contains_key(&origin) {
                self.forget_settled_origins();
            }
            self.by_origin
                .entry(origin)
                .or_default()
                .push_back(client_id.to_owned());
        }
    }

    /// Drops origins none of whose registrations is still never-used.
    fn forget_settled_origins(&mut self) {
        let reader = self.reader.clone();
        self.by_origin.retain(|_, ids| {
            ids.retain(|id| {
                reader
                    .load(id)
                    .ok()
                    .flatten()
                    .is_some_and(|r| r.last_used_at.is_none())
            });
            !ids.is_empty()
        });
    }

    /// Makes room in a full registry by evicting its oldest never-used
    /// registration that is old enough; answers the evicted client id.
    fn evict_unused(&mut self, now: UnixTime) -> Result<Option<String>, RegistryError> {
        let Some(min_age) = self.guard.evict_unused_after else {
            return Ok(None);
        };
        if self.candidates.is_empty() && now >= self.no_candidate_before {
            self.scan_candidates(now, min_age)?;
        }
        while let Some((_, id)) = self.candidates.pop_front() {
            let still = self
                .load(&id)?
                .is_some_and(|r| r.last_used_at.is_none() && r.issued_at <= now - min_age);
            if still {
                self.remove(&id)?;
                return Ok(Some(id));
            }
        }
        Ok(None)
    }

    /// One pass over the registry: the oldest never-used registrations that
    /// are old enough to evict, and when the next one could become so.
    fn scan_candidates(&mut self, now: UnixTime, min_age: i64) -> Result<(), RegistryError> {
        const PAGE: usize = 512;
        let mut oldest: std::collections::BinaryHeap<(UnixTime, String)> = Default::default();
        let mut youngest_unused = UnixTime::MAX;
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = self
                .store
                .scan_prefix(Tree::Clients, b"", after.as_deref(), PAGE)?;
            for (_, bytes) in &page {
                let Ok(r) = codec::decode::<ClientRecord>(Tree::Clients, bytes) else {
                    continue;
                };
                if r.last_used_at.is_some() {
                    continue;
                }
                if r.issued_at > now - min_age {
                    youngest_unused = youngest_unused.min(r.issued_at);
                    continue;
                }
                oldest.push((r.issued_at, r.client_id));
                if oldest.len() > EVICTION_CANDIDATES {
                    oldest.pop();
                }
            }
            match page.last() {
                Some((last, _)) if page.len() == PAGE => after = Some(last.clone()),
                _ => break,
            }
        }
        self.candidates = oldest.into_sorted_vec().into();
        self.no_candidate_before = if self.candidates.is_empty() {
            youngest_unused.saturating_add(min_age).min(now + min_age)
        } else {
            UnixTime::MIN
        };
        Ok(())
    }

    /// The read side, for [`crate::actors::handle::Handle::read`].
    pub fn reader(&self) -> Arc<RegistryReader> {
        self.reader.clone()
    }

    fn load(&self, client_id: &str) -> Result<Option<ClientRecord>, RegistryError> {
        self.reader.load(client_id)
    }

    /// Counts the next clients of the start-up count; answers whether any
    /// remain. The actor runs one step per message, so requests are served
    /// between steps.
    pub fn count_step(&mut self) -> Result<bool, RegistryError> {
        const STEP: usize = 8192;
        let Some(after) = self.counting.take() else {
            return Ok(false);
        };
        let start = (!after.is_empty()).then_some(after.as_slice());
        let page = self.store.scan_prefix(Tree::Clients, b"", start, STEP)?;
        self.count += page.len();
        self.counting = match page.last() {
            Some((last, _)) if page.len() == STEP => Some(last.clone()),
            _ => None,
        };
        Ok(self.counting.is_some())
    }

    /// Finishes the start-up count (the cap needs the exact number).
    fn finish_count(&mut self) -> Result<(), RegistryError> {
        while self.count_step()? {}
        Ok(())
    }

    /// Whether the count has already passed `key` (so a change to it must
    /// be counted here, not by the count).
    fn counted(&self, key: &[u8]) -> bool {
        self.counting
            .as_ref()
            .is_none_or(|after| !after.is_empty() && key <= after.as_slice())
    }

    fn added(&mut self, key: &[u8]) {
        if self.counted(key) {
            self.count += 1;
        }
    }

    fn removed(&mut self, key: &[u8]) {
        if self.counted(key) {
            self.count = self.count.saturating_sub(1);
        }
    }

    /// A live (stored and unexpired) client.
    fn live(&self, client_id: &str, now: UnixTime) -> Result<Option<ClientRecord>, RegistryError> {
        self.reader.live(client_id, now)
    }

    fn save(&self, record: &ClientRecord) -> Result<(), RegistryError> {
        self.store.insert(
            Tree::Clients,
            &keys::client(&record.client_id),
            codec::encode(record)?,
        )?;
        self.durable()
    }

    fn durable(&self) -> Result<(), RegistryError> {
        if self.flush_every_write {
            self.store.flush()?;
        }
        Ok(())
    }

    fn authorized(
        &self,
        client_id: &ClientId,
        token: &SecretToken,
        now: UnixTime,
    ) -> Result<ClientRecord, RegistryError> {
        self.reader.authorized(client_id, token, now)
    }

    pub fn register(&mut self, msg: RegisterClient) -> Result<Registered, RegistryError> {
        if self.counting.is_some() {
            self.finish_count()?;
        }
        if let Some(origin) = &msg.origin {
            self.check_origin(origin, msg.now)?;
        }
        let mut evicted = None;
        if self.count >= self.max_clients {
            self.purge_expired(PurgeExpired {
                now: msg.now,
                limit: INLINE_PURGE_LIMIT,
                after: None,
                scan: usize::MAX,
            })?;
            if self.count >= self.max_clients {
                evicted = self.evict_unused(msg.now)?;
                if evicted.is_none() {
                    return Err(RegistryError::Full(self.max_clients));
                }
            }
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
            client_id: client_id.as_str().to_owned(),
            secret_hash: client_secret.as_ref().map(SecretToken::hash),
            registration_token_hash: registration_token.hash(),
            metadata: msg.metadata,
            issued_at: msg.now,
            last_used_at: None,
            updated_at: msg.now,
            disabled: false,
        };
        self.save(&record)?;
        self.added(&keys::client(&record.client_id));
        self.note_origin(msg.origin, &record.client_id);
        Ok(Registered {
            client: record.view(self.expiry),
            evicted,
            client_secret,
            registration_token,
        })
    }

    pub fn read(&mut self, msg: ReadClient) -> Result<ClientView, RegistryError> {
        Ok(self
            .authorized(&msg.client_id, &msg.registration_token, msg.now)?
            .view(self.expiry))
    }

    pub fn update(&mut self, msg: UpdateClient) -> Result<Updated, RegistryError> {
        let mut record = self.authorized(&msg.client_id, &msg.registration_token, msg.now)?;
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
        record.metadata = msg.metadata;
        record.updated_at = msg.now;
        self.save(&record)?;
        Ok(Updated {
            client: record.view(self.expiry),
            new_secret,
        })
    }

    pub fn delete(&mut self, msg: DeleteClient) -> Result<(), RegistryError> {
        self.authorized(&msg.client_id, &msg.registration_token, msg.now)?;
        self.remove(msg.client_id.as_str())
    }

    #[cfg(test)]
    pub(super) fn delete_for_test(&mut self, client_id: &str) {
        self.remove(client_id).unwrap();
    }

    fn remove(&mut self, client_id: &str) -> Result<(), RegistryError> {
        let key = keys::client(client_id);
        if self.store.remove(Tree::Clients, &key)?.is_some() {
            self.removed(&key);
        }
        self.durable()
    }

    pub fn authenticate(&mut self, msg: AuthenticateClient) -> Result<ClientView, RegistryError> {
        let mut record = self.reader.verify(&msg)?;
        self.touch(&mut record, msg.now)?;
        Ok(record.view(self.expiry))
    }

    pub fn record_use(&mut self, msg: RecordClientUse) -> Result<(), RegistryError> {
        let mut record = self
            .live(msg.client_id.as_str(), msg.now)?
            .ok_or(RegistryError::InvalidClient)?;
        self.touch(&mut record, msg.now)
    }

    fn touch(&mut self, record: &mut ClientRecord, now: UnixTime) -> Result<(), RegistryError> {
        let stale = record
            .last_used_at
            .is_none_or(|t| now - t >= USE_WRITE_INTERVAL);
        if stale {
            record.last_used_at = Some(now);
            self.save(record)?;
        }
        Ok(())
    }

    pub fn count(&mut self, _: CountClients) -> Result<usize, RegistryError> {
        self.finish_count()?;
        Ok(self.count)
    }

    /// Scans clients in key order from `msg.after`, at most `msg.scan` of
    /// them, and removes up to `msg.limit` expired ones, one atomic batch per
    /// page. Answers where to go on (`next`), so the janitor walks a large
    /// registry in bounded steps while registrations are served between
    /// them. Records that cannot be decoded are reported and left in place.
    pub fn purge_expired(&mut self, msg: PurgeExpired) -> Result<PurgeReport, RegistryError> {
        const PAGE: usize = 512;
        let mut report = PurgeReport::default();
        let mut after = msg.after.clone();
        let mut finished = false;
        'pages: while report.removed.len() < msg.limit && report.scanned < msg.scan {
            let want = PAGE.min(msg.scan - report.scanned);
            let page = self
                .store
                .scan_prefix(Tree::Clients, b"", after.as_deref(), want)?;
            let at_end = page.len() < want;
            let mut expired = Vec::new();
            for (key, bytes) in &page {
                if report.removed.len() + expired.len() >= msg.limit {
                    self.remove_expired(expired, &mut report)?;
                    break 'pages;
                }
                after = Some(key.clone());
                report.scanned += 1;
                match codec::decode::<ClientRecord>(Tree::Clients, bytes) {
                    Ok(r) if r.is_expired(msg.now, self.expiry) => {
                        expired.push((key.clone(), r.client_id));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(error = %e, key = %String::from_utf8_lossy(key), "unreadable client record left in place")
                    }
                }
            }
            self.remove_expired(expired, &mut report)?;
            if at_end {
                finished = true;
                break;
            }
        }
        report.next = if finished { None } else { after };
        if !report.removed.is_empty() {
            self.durable()?;
        }
        Ok(report)
    }

    /// Removes expired clients (store key, client id). Each removal stands
    /// alone, so no transaction (a sled transaction would cost two
    /// log-buffer writes per page).
    fn remove_expired(
        &mut self,
        expired: Vec<(Vec<u8>, String)>,
        report: &mut PurgeReport,
    ) -> Result<(), RegistryError> {
        let mut batch = Batch::new();
        for (key, _) in &expired {
            batch.remove(Tree::Clients, key.clone());
        }
        self.store.apply_in_order(batch)?;
        for (key, client_id) in expired {
            self.removed(&key);
            report.removed.push(client_id);
        }
        Ok(())
    }

    pub fn get(&mut self, msg: GetClient) -> Result<Option<ClientView>, RegistryError> {
        let Some(id) = ClientId::parse(&msg.client_id) else {
            return Ok(None);
        };
        Ok(self
            .live(id.as_str(), msg.now)?
            .filter(|r| !r.disabled)
            .map(|r| r.view(self.expiry)))
    }

    /// A page of clients (expired ones included) after the cursor, filtered.
    /// The cursor is the last key looked at, so a walk visits every client
    /// exactly once even while clients are added.
    pub fn list(&mut self, msg: ListClients) -> Result<ClientPage, RegistryError> {
        const PAGE: usize = 256;
        let mut out = ClientPage::default();
        let mut after = msg.after.map(String::into_bytes);
        let f = &msg.filter;
        loop {
            let page = self
                .store
                .scan_prefix(Tree::Clients, b"", after.as_deref(), PAGE)?;
            let Some((last, _)) = page.last() else {
                out.next = None;
                return Ok(out);
            };
            after = Some(last.clone());
            for (key, bytes) in &page {
                let Ok(record) = codec::decode::<ClientRecord>(Tree::Clients, bytes) else {
                    continue;
                };
                let expired = record.is_expired(msg.now, self.expiry);
                let name = record
                    .metadata
                    .client_name
                    .as_deref()
                    .unwrap_or("")
                    .to_lowercase();
                let keep = f
                    .name_contains
                    .as_ref()
                    .is_none_or(|n| name.contains(&n.to_lowercase()))
                    && f.created_before.is_none_or(|t| record.issued_at < t)
                    && f.created_after.is_none_or(|t| record.issued_at > t)
                    && f.expired.is_none_or(|e| e == expired)
                    && f.auth_method
                        .is_none_or(|m| m == record.metadata.auth_method);
                if keep {
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

    /// A client, expired or not (for operators).
    pub fn inspect(&mut self, msg: InspectClient) -> Result<Option<ClientView>, RegistryError> {
        Ok(self.load(&msg.client_id)?.map(|r| r.view(self.expiry)))
    }

    pub fn set_disabled(&mut self, msg: SetClientDisabled) -> Result<bool, RegistryError> {
        let Some(mut record) = self.load(&msg.client_id)? else {
            return Ok(false);
        };
        record.disabled = msg.disabled;
        self.save(&record)?;
        Ok(true)
    }

    /// Deletes a client without its registration token (operators).
    pub fn remove_client(&mut self, msg: RemoveClient) -> Result<bool, RegistryError> {
        let existed = self.load(&msg.client_id)?.is_some();
        if existed {
            self.remove(&msg.client_id)?;
        }
        Ok(existed)
    }

    pub fn ping(&mut self, _: PingStore) -> Result<(), RegistryError> {
        self.store.get(Tree::Meta, keys::SCHEMA_KEY)?;
        Ok(())
    }
}
