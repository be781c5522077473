//! What the dev provider remembers between requests — its codes, access
//! and refresh tokens — kept in the configured store (tree `dev_provider`,
//! see `storage::keys`), so every instance on a shared database knows
//! them: behind a load balancer, a code issued by one instance is redeemed
//! at another. A code is taken by a conditional write over the record as
//! read, so of instances redeeming one code at once exactly one gets it.
//! Every record has an expiry: one read expired is removed, and a sweep
//! (at most every [`SWEEP_EVERY`] seconds, on a write) removes the rest.

use std::sync::atomic::{AtomicI64, Ordering};

use serde::{Deserialize, Serialize};

use crate::clock::{Clock, UnixTime};
use crate::domain::SecretToken;
use crate::storage::{codec, keys, DevProviderTree, Owned, OwnedBatch, StoreError, Tree};

/// How long a code may wait for its redemption.
pub const CODE_TTL: i64 = 300;
/// How long an access token is good for.
pub const ACCESS_TTL: i64 = 3600;
/// How long a refresh token is good for (the demo user signs in again after).
pub const REFRESH_TTL: i64 = 30 * 24 * 3600;
/// Least time between two sweeps of expired records by one instance.
pub const SWEEP_EVERY: i64 = 300;
const SWEEP_PAGE: usize = 256;

const CODE: &str = "code";
const ACCESS: &str = "access";
const REFRESH: &str = "refresh";

/// An authorization request the demo user approved, until its code is redeemed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevCode {
    pub redirect_uri: String,
    pub challenge: String,
    pub scope: String,
    pub nonce: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Grant {
    Code(DevCode),
    Access,
    Refresh { scope: String },
}

/// A stored code or token (format 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct DevRecord {
    grant: Grant,
    expires_at: UnixTime,
}

pub struct DevState {
    trees: Owned<DevProviderTree>,
    clock: Clock,
    last_sweep: AtomicI64,
}

fn key(kind: &str, code_or_token: &str) -> Vec<u8> {
    keys::dev_record(
        kind,
        SecretToken::presented(code_or_token).hash().as_bytes(),
    )
}

impl DevState {
    pub fn new(trees: Owned<DevProviderTree>, clock: Clock) -> Self {
        Self {
            trees,
            clock,
            last_sweep: AtomicI64::new(i64::MIN),
        }
    }

    pub fn issue_code(&self, code: &str, request: DevCode) -> Result<(), StoreError> {
        self.put(key(CODE, code), Grant::Code(request), CODE_TTL)
    }

    /// The request `code` was issued for, once: `None` when it is unknown,
    /// expired, or taken already (here or by another instance).
    pub fn take_code(&self, code: &str) -> Result<Option<DevCode>, StoreError> {
        let key = key(CODE, code);
        let Some((stored, record)) = self.read(&key)? else {
            return Ok(None);
        };
        let mut batch = OwnedBatch::new();
        batch.swap(DevProviderTree::DevProvider, key, Some(stored), None);
        match (self.trees.apply(batch), record) {
            (
                Ok(()),
                DevRecord {
                    grant: Grant::Code(request),
                    expires_at,
                },
            ) if expires_at > self.clock.now() => Ok(Some(request)),
            (Ok(()), _) | (Err(StoreError::Conflict { .. }), _) => Ok(None),
            (Err(e), _) => Err(e),
        }
    }

    pub fn issue_access(&self, token: &str) -> Result<(), StoreError> {
        self.put(key(ACCESS, token), Grant::Access, ACCESS_TTL)
    }

    pub fn issue_refresh(&self, token: &str, scope: &str) -> Result<(), StoreError> {
        let grant = Grant::Refresh {
            scope: scope.to_owned(),
        };
        self.put(key(REFRESH, token), grant, REFRESH_TTL)
    }

    /// Whether `token` is an access token issued and not expired or revoked.
    pub fn access_is_live(&self, token: &str) -> Result<bool, StoreError> {
        Ok(self.live(&key(ACCESS, token))?.is_some())
    }

    /// The scope `token` was issued for, while it is a live refresh token.
    pub fn refresh_scope(&self, token: &str) -> Result<Option<String>, StoreError> {
        Ok(match self.live(&key(REFRESH, token))? {
            Some(Grant::Refresh { scope }) => Some(scope),
            _ => None,
        })
    }

    /// Forgets `token`, access or refresh.
    pub fn revoke(&self, token: &str) -> Result<(), StoreError> {
        let mut batch = OwnedBatch::new();
        batch
            .remove(DevProviderTree::DevProvider, key(ACCESS, token))
            .remove(DevProviderTree::DevProvider, key(REFRESH, token));
        self.trees.apply(batch)
    }

    /// Removes every record expired at `now`; answers how many went. A
    /// record another instance changed meanwhile is left to the next sweep.
    pub fn sweep(&self, now: UnixTime) -> Result<usize, StoreError> {
        let mut removed = 0;
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = self.trees.scan_prefix(
                DevProviderTree::DevProvider,
                b"",
                after.as_deref(),
                SWEEP_PAGE,
            )?;
            let Some((last, _)) = page.last() else {
                return Ok(removed);
            };
            after = Some(last.clone());
            let full = page.len() == SWEEP_PAGE;
            for (key, stored) in page {
                if !decode(&stored).is_ok_and(|r| r.expires_at > now) {
                    removed += usize::from(self.remove_as_read(key, stored)?);
                }
            }
            if !full {
                return Ok(removed);
            }
        }
    }

    fn put(&self, key: Vec<u8>, grant: Grant, ttl: i64) -> Result<(), StoreError> {
        let now = self.clock.now();
        let record = DevRecord {
            grant,
            expires_at: now + ttl,
        };
        self.trees
            .insert(DevProviderTree::DevProvider, &key, codec::encode(&record)?)?;
        self.sweep_when_due(now)
    }

    fn sweep_when_due(&self, now: UnixTime) -> Result<(), StoreError> {
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= SWEEP_EVERY
            && self
                .last_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let removed = self.sweep(now)?;
            if removed > 0 {
                tracing::debug!(removed, "dev provider: expired codes and tokens removed");
            }
        }
        Ok(())
    }

    /// The stored bytes and record under `key`; an unreadable one is removed.
    fn read(&self, key: &[u8]) -> Result<Option<(Vec<u8>, DevRecord)>, StoreError> {
        let Some(stored) = self.trees.get(DevProviderTree::DevProvider, key)? else {
            return Ok(None);
        };
        match decode(&stored) {
            Ok(record) => Ok(Some((stored, record))),
            Err(_) => {
                self.remove_as_read(key.to_vec(), stored)?;
                Ok(None)
            }
        }
    }

    /// The grant under `key` while it lasts; one read expired is removed.
    fn live(&self, key: &[u8]) -> Result<Option<Grant>, StoreError> {
        let Some((stored, record)) = self.read(key)? else {
            return Ok(None);
        };
        if record.expires_at > self.clock.now() {
            return Ok(Some(record.grant));
        }
        self.remove_as_read(key.to_vec(), stored)?;
        Ok(None)
    }

    /// Removes `key` if it still holds `stored`; answers whether it did.
    fn remove_as_read(&self, key: Vec<u8>, stored: Vec<u8>) -> Result<bool, StoreError> {
        let mut batch = OwnedBatch::new();
        batch.swap(DevProviderTree::DevProvider, key, Some(stored), None);
        match self.trees.apply(batch) {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

fn decode(stored: &[u8]) -> Result<DevRecord, StoreError> {
    codec::decode(Tree::DevProvider, stored)
}

#[cfg(test)]
mod tests;
