//! Removal of expired clients, in bounded steps (the janitor's and a full
//! registry's).

use super::RegistryCore;
use crate::actors::registry::record::ClientRecord;
use crate::actors::registry::{PurgeExpired, PurgeReport, RegistryError};
use crate::domain::ClientId;
use crate::storage::{OwnedBatch, RegistryTree, StoreError};

impl RegistryCore {
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
            let page =
                self.trees
                    .scan_prefix(RegistryTree::Clients, b"", after.as_deref(), want)?;
            let at_end = page.len() < want;
            let mut expired = Vec::new();
            for (key, bytes) in &page {
                if report.removed.len() + expired.len() >= msg.limit {
                    self.remove_expired(expired, &mut report)?;
                    break 'pages;
                }
                after = Some(key.clone());
                report.scanned += 1;
                match ClientRecord::decode(bytes) {
                    Ok(r) if r.is_expired(msg.now, self.expiry) => {
                        expired.push((key.clone(), r.client_id, bytes.clone()));
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
        if finished {
            self.forget_stale_origins(msg.now)?;
        }
        if !report.removed.is_empty() {
            self.durable()?;
        }
        Ok(report)
    }

    /// Removes expired clients (store key, client id) with their
    /// timelines. Each removal stands alone, so no transaction (a sled
    /// transaction would cost two log-buffer writes per page).
    fn remove_expired(
        &mut self,
        expired: Vec<(Vec<u8>, ClientId, Vec<u8>)>,
        report: &mut PurgeReport,
    ) -> Result<(), RegistryError> {
        if self.shared {
            return self.remove_expired_shared(expired, report);
        }
        let mut batch = OwnedBatch::new();
        for (key, _, _) in &expired {
            batch.remove(RegistryTree::Timelines, key.clone());
            batch.remove(RegistryTree::Clients, key.clone());
        }
        self.trees.apply_in_order(batch)?;
        for (key, client_id, _) in expired {
            self.removed(&key);
            report.removed.push(client_id);
        }
        Ok(())
    }

    /// On a store shared by several instances: the page's clients go in one
    /// transaction with the shared count, each only if still as read (used
    /// or removed by another instance meanwhile: kept, or not counted
    /// twice). When the page conflicts, its clients go one by one.
    fn remove_expired_shared(
        &mut self,
        expired: Vec<(Vec<u8>, ClientId, Vec<u8>)>,
        report: &mut PurgeReport,
    ) -> Result<(), RegistryError> {
        if expired.is_empty() {
            return Ok(());
        }
        let (n, counted) = self.shared_count()?;
        let mut batch = OwnedBatch::new();
        for (key, _, stored) in &expired {
            batch.remove(RegistryTree::Timelines, key.clone());
            batch.swap(
                RegistryTree::Clients,
                key.clone(),
                Some(stored.clone()),
                None,
            );
        }
        self.count_change(&mut batch, counted, n, -(expired.len() as isize));
        match self.trees.apply(batch) {
            Ok(()) => {
                self.count = n.saturating_sub(expired.len());
                report
                    .removed
                    .extend(expired.into_iter().map(|(_, id, _)| id));
                return Ok(());
            }
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        for (key, client_id, stored) in expired {
            let removed = self.retrying(|core| {
                match core.trees.get(RegistryTree::Clients, &key)? {
                    Some(now) if now == stored => core.remove_stored(&key, now).map(|()| true),
                    // Changed (used, so maybe no longer expired) or gone.
                    _ => Ok(false),
                }
            })?;
            if removed {
                report.removed.push(client_id);
            }
        }
        Ok(())
    }
}
