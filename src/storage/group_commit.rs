//! Group commit: an answer that acknowledges a write waits until the write
//! is on disk, and every request waiting at the same moment shares one flush.
//!
//! [`GroupCommit`] wraps the real store and counts completed writes. The
//! actors write without flushing; the HTTP side then calls
//! [`GroupCommit::barrier`] before it answers. The first waiter that finds no
//! flush running becomes the leader and flushes on the blocking pool; the
//! flush covers every write counted before it started, so all waiters whose
//! writes are covered are released together. A flush that fails releases its
//! waiters with an error (the caller answers 503) and the next waiter tries
//! again, so the service recovers by itself when the disk does.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::watch;

use super::{Batch, Entry, SharedStore, Store, StoreError, Tree};

/// What the flushes so far have achieved, in write-sequence numbers.
#[derive(Debug, Clone, Copy, Default)]
struct Outcome {
    /// Every write numbered up to here is on disk.
    flushed: u64,
    /// The last flush that failed was meant to cover writes up to here.
    failed: u64,
}

pub struct GroupCommit {
    inner: SharedStore,
    /// Completed writes (each numbered by this counter).
    written: AtomicU64,
    /// Whether a leader is flushing right now.
    flushing: Mutex<bool>,
    outcome: watch::Sender<Outcome>,
    /// Flushes that failed in a row, to log the first and the recovery.
    failures: AtomicU64,
    /// When recovery was last tried (it writes a probe file; not too often).
    last_recovery: Mutex<Option<Instant>>,
    /// Told of every flush (how long it took, whether it worked): the
    /// server counts them in its metrics; storage itself knows no metrics.
    observer: FlushObserver,
}

thread_local! {
    /// Writes taken on this thread, by any group commit: an actor's thread
    /// counts its own, which tells whether one message wrote.
    static WRITES_HERE: Cell<u64> = const { Cell::new(0) };
}

/// Receives each flush's duration and outcome.
pub type FlushObserver = Box<dyn Fn(std::time::Duration, bool) + Send + Sync>;

/// How often a failed store is checked for recovery while writes keep failing.
const RECOVERY_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

/// Resets the leader flag even when the leader's request is dropped midway
/// (a client that hangs up), and wakes the other waiters to re-check.
struct LeaderGuard<'a>(&'a GroupCommit);

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        *self.0.flushing.lock().unwrap_or_else(|p| p.into_inner()) = false;
        self.0.outcome.send_modify(|_| {});
    }
}

impl GroupCommit {
    pub fn new(inner: SharedStore) -> Arc<Self> {
        Self::observed(inner, Box::new(|_, _| {}))
    }

    /// A group commit that reports every flush to `observer`.
    pub fn observed(inner: SharedStore, observer: FlushObserver) -> Arc<Self> {
        Arc::new(Self {
            inner,
            written: AtomicU64::new(0),
            flushing: Mutex::new(false),
            outcome: watch::Sender::new(Outcome::default()),
            failures: AtomicU64::new(0),
            last_recovery: Mutex::new(None),
            observer,
        })
    }

    /// How many writes this thread has made so far (through any group
    /// commit): a change between two readings on one thread means that
    /// thread wrote in between — a write that failed counts too.
    pub fn writes_on_this_thread() -> u64 {
        WRITES_HERE.with(Cell::get)
    }

    fn wrote(&self) {
        self.written.fetch_add(1, Ordering::AcqRel);
        WRITES_HERE.with(|w| w.set(w.get() + 1));
    }

    fn recovery_due(&self) -> bool {
        let mut last = self.last_recovery.lock().unwrap_or_else(|p| p.into_inner());
        let due = last.is_none_or(|t| t.elapsed() >= RECOVERY_INTERVAL);
        if due {
            *last = Some(Instant::now());
        }
        due
    }

    /// Waits until every write completed before this call is durable.
    /// Cheap when nothing is pending; an error means the writes may be lost.
    pub async fn barrier(self: &Arc<Self>) -> Result<(), StoreError> {
        if !self.inner.is_persistent() {
            return Ok(());
        }
        let ticket = self.written.load(Ordering::Acquire);
        let mut rx = self.outcome.subscribe();
        loop {
            let seen = *rx.borrow_and_update();
            if seen.flushed >= ticket {
                return Ok(());
            }
            if seen.failed >= ticket {
                return Err(StoreError::Engine(
                    "the write could not be made durable (see the storage error logged)".into(),
                ));
            }
            let lead = {
                let mut flushing = self.flushing.lock().unwrap_or_else(|p| p.into_inner());
                !std::mem::replace(&mut *flushing, true)
            };
            if lead {
                let _guard = LeaderGuard(self);
                self.lead_flush().await;
                continue;
            }
            if rx.changed().await.is_err() {
                return Err(StoreError::Engine("storage is shutting down".into()));
            }
        }
    }

    async fn lead_flush(self: &Arc<Self>) {
        let target = self.written.load(Ordering::Acquire);
        let store = self.inner.clone();
        let started = Instant::now();
        let try_recover = self.failures.load(Ordering::Acquire) > 0 && self.recovery_due();
        let result = match actix_web::rt::task::spawn_blocking(move || {
            if try_recover {
                // The last flush failed: the engine may need reopening before
                // anything can be written again (sled stays failed otherwise).
                match store.recover() {
                    Ok(()) => tracing::warn!("storage reopened after a disk error"),
                    Err(e) => tracing::debug!(error = %e, "storage not recovered yet"),
                }
            }
            store.flush()
        })
        .await
        {
            Ok(r) => r,
            Err(e) => Err(StoreError::Engine(format!("flush task failed: {e}"))),
        };
        (self.observer)(started.elapsed(), result.is_ok());
        match result {
            Ok(()) => {
                let failed_before = self.failures.swap(0, Ordering::AcqRel);
                if failed_before > 0 {
                    tracing::warn!(
                        failed_flushes = failed_before,
                        "storage flushes succeed again; writes are durable again"
                    );
                }
                self.outcome
                    .send_modify(|o| o.flushed = o.flushed.max(target));
            }
            Err(e) => {
                if self.failures.fetch_add(1, Ordering::AcqRel) == 0 {
                    tracing::error!(error = %e, "storage flush failed: writes are refused with 503 until the disk accepts them again (check free space and permissions of the data directory)");
                }
                self.outcome
                    .send_modify(|o| o.failed = o.failed.max(target));
            }
        }
    }
}

impl Store for GroupCommit {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(tree, key)
    }

    fn insert(
        &self,
        tree: Tree,
        key: &[u8],
        value: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let r = self.inner.insert(tree, key, value);
        self.wrote();
        r
    }

    fn remove(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let r = self.inner.remove(tree, key);
        self.wrote();
        r
    }

    fn scan_prefix(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        self.inner.scan_prefix(tree, prefix, after, limit)
    }

    fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        let r = self.inner.apply(batch);
        self.wrote();
        r
    }

    fn apply_in_order(&self, batch: Batch) -> Result<(), StoreError> {
        let r = self.inner.apply_in_order(batch);
        self.wrote();
        r
    }

    fn len(&self, tree: Tree) -> Result<usize, StoreError> {
        self.inner.len(tree)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush()
    }

    fn is_persistent(&self) -> bool {
        self.inner.is_persistent()
    }

    fn is_remote(&self) -> bool {
        self.inner.is_remote()
    }

    fn recover(&self) -> Result<(), StoreError> {
        self.inner.recover()
    }

    fn size_on_disk(&self) -> u64 {
        self.inner.size_on_disk()
    }
}
