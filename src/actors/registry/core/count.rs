//! The count of stored clients that the cap needs: taken in steps after the
//! start, then kept up to date by every registration and removal.

use super::RegistryCore;
use crate::actors::registry::{CountClients, RegistryError};
use crate::storage::RegistryTree;

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
        self.finish_count()?;
        Ok(self.count)
    }
}
