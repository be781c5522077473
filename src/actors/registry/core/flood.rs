//! What keeps one address from filling the registry: a cap on the
//! never-used registrations each origin holds, and eviction of the oldest
//! never-used registration when the registry is full.

use std::collections::{BinaryHeap, VecDeque};

use super::RegistryCore;
use crate::actors::registry::record::ClientRecord;
use crate::actors::registry::RegistryError;
use crate::clock::UnixTime;
use crate::domain::ClientId;
use crate::storage::RegistryTree;

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
