//! The count of stored clients that the cap needs: taken in steps after the
//! start, then kept up to date by every registration and removal.

use super::RegistryCore;
use crate::actors::registry::{CountClients, RegistryError};
use crate::storage::{codec, OwnedBatch, RegistryTree, StoreError, Tree};

/// Key of the shared count in tree `counters`.
const CLIENTS: &[u8] = b"clients";

impl RegistryCore {
    /// Counts the next clients of the start-up count; answers whether any
    /// remain. The actor runs one step per message, so requests are served
    /// between steps.
    pub fn count_step(&mut self) -> Result<bool, RegistryError> {
        const STEP: usize = 8192;
        let Some(after) = self.counting.take() else {
            return Ok(false);
        };
        let start = (!after.is_empty()).then_some(after.as_slice());
        let page = self
            .trees
            .scan_prefix(RegistryTree::Clients, b"", start, STEP)?;
        self.count += page.len();
        self.counting = match page.last() {
            Some((last, _)) if page.len() == STEP => Some(last.clone()),
            _ => None,
        };
        Ok(self.counting.is_some())
    }

    /// Finishes the start-up count (the cap needs the exact number).
    pub(super) fn finish_count(&mut self) -> Result<(), RegistryError> {
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

    pub(super) fn added(&mut self, key: &[u8]) {
        if self.counted(key) {
            self.count += 1;
        }
    }

    pub(super) fn removed(&mut self, key: &[u8]) {
        if self.counted(key) {
            self.count = self.count.saturating_sub(1);
        }
    }

    pub fn count(&mut self, _: CountClients) -> Result<usize, RegistryError> {
        self.refresh_count()?;
        Ok(self.count)
    }

    /// Brings `count` up to date: this process's tally finished, or on a
    /// shared store the count every instance keeps.
    pub(super) fn refresh_count(&mut self) -> Result<(), RegistryError> {
        if self.shared {
            self.count = self.shared_count()?.0;
            self.counting = None;
            Ok(())
        } else {
            self.finish_count()
        }
    }

    /// The count every instance sharing the store keeps, and the bytes it
    /// was read from (a change swaps over them). The first instance that
    /// needs it counts the clients once and stores the number.
    pub(super) fn shared_count(&self) -> Result<(usize, Vec<u8>), RegistryError> {
        for _ in 0..2 {
            if let Some(stored) = self.trees.get(RegistryTree::Counters, CLIENTS)? {
                let n: u64 = codec::decode(Tree::Counters, &stored)?;
                return Ok((n as usize, stored));
            }
            let mut n = 0usize;
            let mut after: Option<Vec<u8>> = None;
            loop {
                let page =
                    self.trees
                        .scan_prefix(RegistryTree::Clients, b"", after.as_deref(), 8192)?;
                n += page.len();
                match page.last() {
                    Some((last, _)) if page.len() == 8192 => after = Some(last.clone()),
                    _ => break,
                }
            }
            let stored = codec::encode(&(n as u64))?;
            let mut batch = OwnedBatch::new();
            batch.swap(RegistryTree::Counters, CLIENTS, None, Some(stored.clone()));
            match self.trees.apply(batch) {
                Ok(()) => return Ok((n, stored)),
                // Another instance stored it first: read theirs.
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict { tree: "counters" }.into())
    }

    /// Adds to `batch` the shared count's change from `n` (read as
    /// `counted`) by `delta`.
    pub(super) fn count_change(
        &self,
        batch: &mut OwnedBatch<RegistryTree>,
        counted: Vec<u8>,
        n: usize,
        delta: isize,
    ) {
        let next = n.saturating_add_signed(delta) as u64;
        // Encoding a u64 cannot fail.
        let next = codec::encode(&next).unwrap_or_default();
        batch.swap(RegistryTree::Counters, CLIENTS, Some(counted), Some(next));
    }
}
