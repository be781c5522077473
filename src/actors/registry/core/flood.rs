//! What keeps one address from filling the registry: a cap on the
//! never-used registrations each origin holds, and eviction of the oldest
//! never-used registration when the registry is full.
//!
//! One instance keeps each origin's registrations in memory. Instances
//! sharing a store keep them in a record per origin (tree `counters`, key
//! `origin/<address>`), written in the same transaction as the client over
//! the record as read, so the cap holds across all of them; the janitor's
//! purge forgets records whose registrations have all expired.

use std::collections::{BinaryHeap, VecDeque};

use serde::{Deserialize, Serialize};

use super::RegistryCore;
use crate::actors::registry::record::ClientRecord;
use crate::actors::registry::RegistryError;
use crate::clock::UnixTime;
use crate::domain::ClientId;
use crate::storage::{codec, OwnedBatch, RegistryTree, StoreError, Tree};

/// Key prefix of the per-origin records in tree `counters`.
const ORIGIN_PREFIX: &[u8] = b"origin/";

/// One origin's registrations that may still be never used (on a shared
/// store): at most the cap of them, checked again when the cap is reached.
#[derive(Debug, Default, Serialize, Deserialize)]
struct OriginRecord {
    clients: Vec<String>,
    /// When the newest of them was registered: once every one of them has
    /// outlived the never-used lifetime, the record can go.
    latest: UnixTime,
}

fn origin_key(origin: &str) -> Vec<u8> {
    [ORIGIN_PREFIX, origin.as_bytes()].concat()
}

/// The flood guard's settings.
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

impl RegistryCore {
    /// Whether `record` still counts against its origin: stored, never used
    /// and not expired.
    fn pending(&self, client_id: &str, now: UnixTime) -> Result<bool, RegistryError> {
        Ok(self
            .live(client_id, now)?
            .is_some_and(|r| r.last_used_at.is_none()))
    }

    /// Refuses an origin that already holds its cap of never-used
    /// registrations (after dropping those used, removed or expired).
    pub(super) fn check_origin(
        &mut self,
        origin: &str,
        now: UnixTime,
    ) -> Result<(), RegistryError> {
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

    /// On a shared store: refuses an origin that holds its cap of
    /// never-used registrations (checked again against the clients when the
    /// record is full), else adds to `batch` its record with `client_id`
    /// added, over the record as read (a conflict when another instance
    /// registered for the origin meanwhile: the caller decides again).
    pub(super) fn claim_origin(
        &self,
        batch: &mut OwnedBatch<RegistryTree>,
        origin: &str,
        client_id: &str,
        now: UnixTime,
    ) -> Result<(), RegistryError> {
        let cap = self.guard.max_unused_per_origin;
        if cap == 0 {
            return Ok(());
        }
        let key = origin_key(origin);
        let stored = self.trees.get(RegistryTree::Counters, &key)?;
        let mut record: OriginRecord = match &stored {
            // An unreadable record is replaced (over its bytes) by a new one.
            Some(bytes) => codec::decode(Tree::Counters, bytes).unwrap_or_default(),
            None => OriginRecord::default(),
        };
        if record.clients.len() >= cap {
            let mut pending = Vec::with_capacity(cap);
            for id in record.clients {
                if self.pending(&id, now)? {
                    pending.push(id);
                }
            }
            record.clients = pending;
            if record.clients.len() >= cap {
                return Err(RegistryError::TooManyUnused(cap));
            }
        }
        record.clients.push(client_id.to_owned());
        record.latest = record.latest.max(now);
        batch.swap(
            RegistryTree::Counters,
            key,
            stored,
            Some(codec::encode(&record)?),
        );
        Ok(())
    }

    /// On a shared store: removes the origin records none of whose
    /// registrations can still be never used (all older than the never-used
    /// lifetime); answers how many. A record an instance changed meanwhile
    /// stays.
    pub(super) fn forget_stale_origins(&mut self, now: UnixTime) -> Result<usize, RegistryError> {
        const PAGE: usize = 512;
        if !self.shared || self.guard.max_unused_per_origin == 0 {
            return Ok(0);
        }
        let lifetime = self.expiry.unused_seconds;
        let mut removed = 0;
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = self.trees.scan_prefix(
                RegistryTree::Counters,
                ORIGIN_PREFIX,
                after.as_deref(),
                PAGE,
            )?;
            let stale: Vec<(Vec<u8>, Vec<u8>)> = page
                .iter()
                .filter(|(_, bytes)| {
                    codec::decode::<OriginRecord>(Tree::Counters, bytes)
                        .map_or(true, |r| r.latest.saturating_add(lifetime) <= now)
                })
                .cloned()
                .collect();
            let mut batch = OwnedBatch::new();
            for (key, bytes) in &stale {
                batch.swap(
                    RegistryTree::Counters,
                    key.clone(),
                    Some(bytes.clone()),
                    None,
                );
            }
            match if stale.is_empty() {
                Ok(())
            } else {
                self.trees.apply(batch)
            } {
                Ok(()) => removed += stale.len(),
                // One was registered for meanwhile: the others one by one.
                Err(StoreError::Conflict { .. }) => {
                    for (key, bytes) in stale {
                        let mut one = OwnedBatch::new();
                        one.swap(RegistryTree::Counters, key, Some(bytes), None);
                        match self.trees.apply(one) {
                            Ok(()) => removed += 1,
                            Err(StoreError::Conflict { .. }) => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
                Err(e) => return Err(e.into()),
            }
            match page.last() {
                Some((last, _)) if page.len() == PAGE => after = Some(last.clone()),
                _ => return Ok(removed),
            }
        }
    }

    pub(super) fn note_origin(&mut self, origin: Option<String>, client_id: &str) {
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
        let reader = &self.reader;
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
    pub(super) fn evict_unused(
        &mut self,
        now: UnixTime,
    ) -> Result<Option<ClientId>, RegistryError> {
        let Some(min_age) = self.guard.evict_unused_after else {
            return Ok(None);
        };
        if self.candidates.is_empty() && now >= self.no_candidate_before {
            self.scan_candidates(now, min_age)?;
        }
        while let Some((_, id)) = self.candidates.pop_front() {
            let key = crate::storage::keys::client(id.as_str());
            let Some(stored) = self.trees.get(RegistryTree::Clients, &key)? else {
                continue;
            };
            let still = ClientRecord::decode(&stored)
                .is_ok_and(|r| r.last_used_at.is_none() && r.issued_at <= now - min_age);
            if still {
                match self.remove_stored(&key, stored) {
                    Ok(()) => return Ok(Some(id)),
                    // Used or removed by another instance meanwhile.
                    Err(RegistryError::Store(crate::storage::StoreError::Conflict { .. })) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(None)
    }

    /// One pass over the registry: the oldest never-used registrations that
    /// are old enough to evict, and when the next one could become so.
    fn scan_candidates(&mut self, now: UnixTime, min_age: i64) -> Result<(), RegistryError> {
        const PAGE: usize = 512;
        let mut oldest: BinaryHeap<(UnixTime, ClientId)> = BinaryHeap::new();
        let mut youngest_unused = UnixTime::MAX;
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page =
                self.trees
                    .scan_prefix(RegistryTree::Clients, b"", after.as_deref(), PAGE)?;
            for (_, bytes) in &page {
                let Ok(r) = ClientRecord::decode(bytes) else {
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
}
