//! Storage: a small key-value [`Store`] trait with named trees, and its engines.
//!
//! Actors own their trees (see [`keys`]): each is handed an [`Owned`] over
//! its own set of trees only ([`TreeSet`]), so writing another actor's
//! tree does not compile; record encoding lives in [`codec`], so no other module knows how
//! bytes on disk look. [`PgStore`] is the shared backend: several instances
//! on one PostgreSQL database.

pub mod codec;
mod group_commit;
pub mod keys;
mod memory;
pub mod postgres;
mod sled_engine;
mod trees;

use std::sync::Arc;

pub use group_commit::GroupCommit;
pub use keys::Tree;
pub use memory::MemoryStore;
pub use postgres::{PgOptions, PgStore};
pub use sled_engine::SledStore;
pub use trees::{
    BrokerTree, DevProviderTree, LeaseTree, Owned, OwnedBatch, ReadOnly, RegistryTree, Sizes,
    TreeSet, VaultTree,
};

/// A key/value pair as stored.
pub type Entry = (Vec<u8>, Vec<u8>);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage engine error: {0}")]
    Engine(String),
    #[error("stored record in tree `{tree}` could not be decoded: {reason}")]
    Corrupt { tree: &'static str, reason: String },
    #[error("record could not be encoded: {0}")]
    Encode(String),
    /// A conditional write ([`Batch::swap`]) found another value than the
    /// one it expected: another writer (another instance on a shared
    /// database) changed the record first. Nothing of an atomic batch was
    /// written; of an in-order one, the writes before the swap were.
    #[error("record in tree `{tree}` was changed by another writer")]
    Conflict { tree: &'static str },
}

/// One write in an atomic [`Batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Insert {
        tree: Tree,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Remove {
        tree: Tree,
        key: Vec<u8>,
    },
    /// A conditional write (compare-and-swap): sets `key` to `new` (`None`
    /// removes it) only if it holds exactly `expected` now (`None`: absent).
    Swap {
        tree: Tree,
        key: Vec<u8>,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    },
}

impl Op {
    pub fn tree(&self) -> Tree {
        match self {
            Op::Insert { tree, .. } | Op::Remove { tree, .. } | Op::Swap { tree, .. } => *tree,
        }
    }

    pub fn key(&self) -> &[u8] {
        match self {
            Op::Insert { key, .. } | Op::Remove { key, .. } | Op::Swap { key, .. } => key,
        }
    }
}

/// Writes applied all together or not at all, possibly across trees.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Batch {
    ops: Vec<Op>,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, tree: Tree, key: impl Into<Vec<u8>>, value: Vec<u8>) -> &mut Self {
        self.ops.push(Op::Insert {
            tree,
            key: key.into(),
            value,
        });
        self
    }

    pub fn remove(&mut self, tree: Tree, key: impl Into<Vec<u8>>) -> &mut Self {
        self.ops.push(Op::Remove {
            tree,
            key: key.into(),
        });
        self
    }

    /// Sets `key` to `new` (`None` removes it) only if it holds `expected`
    /// (`None`: absent) when the batch is applied; otherwise the batch fails
    /// with [`StoreError::Conflict`]. This is how a change that must happen
    /// once (a code redeemed, a refresh token rotated) stays once when
    /// several processes write one database.
    pub fn swap(
        &mut self,
        tree: Tree,
        key: impl Into<Vec<u8>>,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    ) -> &mut Self {
        self.ops.push(Op::Swap {
            tree,
            key: key.into(),
            expected,
            new,
        });
        self
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// The distinct trees this batch touches, in first-use order.
    pub fn trees(&self) -> Vec<Tree> {
        let mut trees = Vec::new();
        for op in &self.ops {
            let tree = op.tree();
            if !trees.contains(&tree) {
                trees.push(tree);
            }
        }
        trees
    }
}

/// The storage capability every actor is given.
///
/// Calls may block (disk I/O); actors that use a store run on a `SyncArbiter`
/// so HTTP workers are never stalled by it.
pub trait Store: Send + Sync + 'static {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Inserts and returns the previous value.
    fn insert(&self, tree: Tree, key: &[u8], value: Vec<u8>)
        -> Result<Option<Vec<u8>>, StoreError>;
    /// Removes and returns the previous value.
    fn remove(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Up to `limit` entries whose key starts with `prefix`, in key order,
    /// starting strictly after `after` when given (cursor pagination).
    fn scan_prefix(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError>;
    /// Applies every operation of `batch` atomically: when one of its
    /// swaps finds another value, nothing is written and the answer is
    /// [`StoreError::Conflict`].
    fn apply(&self, batch: Batch) -> Result<(), StoreError>;
    /// Applies the operations one after the other, each atomic on its own:
    /// a crash may leave a prefix applied. For writes ordered so that every
    /// prefix is harmless (the write that makes the change take effect goes
    /// last); much cheaper than [`Store::apply`] on sled, whose atomic
    /// batches each force two log-buffer writes. A swap is atomic on its
    /// own (compare-and-swap); when it finds another value the writes
    /// after it are not made and the answer is [`StoreError::Conflict`].
    fn apply_in_order(&self, batch: Batch) -> Result<(), StoreError> {
        self.apply(batch)
    }
    /// Number of entries in `tree`.
    fn len(&self, tree: Tree) -> Result<usize, StoreError>;
    /// Makes every acknowledged write durable.
    fn flush(&self) -> Result<(), StoreError>;
    /// After a failed write or flush: gets the engine writable again when
    /// the disk allows. `Ok` means writes work again.
    fn recover(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Whether writes reach disk at all.
    fn is_persistent(&self) -> bool;
    /// Whether a call crosses the network (a shared database), so callers
    /// on an event loop must not wait for it there.
    fn is_remote(&self) -> bool {
        false
    }
    /// Bytes used on disk (0 for memory engines).
    fn size_on_disk(&self) -> u64;
}

pub type SharedStore = Arc<dyn Store>;

/// A whole store that can only be read: what the Vault's snapshot of
/// every tree reads (an actor's own reads go through [`ReadOnly`]).
#[derive(Clone)]
pub struct ReadStore(SharedStore);

impl ReadStore {
    pub fn new(store: SharedStore) -> Self {
        Self(store)
    }

    /// See [`Store::scan_prefix`].
    pub fn scan_prefix(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        self.0.scan_prefix(tree, prefix, after, limit)
    }
}

/// Smallest key strictly greater than every key that starts with `prefix`,
/// or `None` when no such key exists (prefix of all `0xff`).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests;

#[cfg(test)]
pub mod testing;
