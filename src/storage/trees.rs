//! Tree ownership as types. Each actor is handed an [`Owned`] over its own
//! set of trees ([`RegistryTree`], [`VaultTree`], [`BrokerTree`]) and can
//! name no other: `owned.insert(Tree::Grants, …)` in the Registry does not
//! compile, because the Registry's handle takes a [`RegistryTree`]. Readers
//! get a [`ReadOnly`] view of the same set, which has no write at all. The
//! engine underneath is still one [`Store`]; only the composition root
//! (start-up, the operator commands) holds it whole.

use std::marker::PhantomData;

use super::{keys, Batch, Entry, SharedStore, StoreError, Tree};

/// The trees one owner alone writes: a subset of [`Tree`].
pub trait TreeSet: Copy + Into<Tree> + Send + Sync + 'static {}

macro_rules! tree_sets {
    ($($(#[$doc:meta])* $set:ident { $($tree:ident),+ $(,)? })+) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $set {
            $($tree),+
        }

        impl From<$set> for Tree {
            fn from(tree: $set) -> Tree {
                match tree {
                    $($set::$tree => Tree::$tree),+
                }
            }
        }

        impl TreeSet for $set {}
    )+};
}

tree_sets! {
    /// The Registry's trees: proxy clients, their connection timelines,
    /// and (on a shared store) their count.
    RegistryTree { Clients, Timelines, Counters }
    /// The Vault's trees: users' credentials, their indexes, sealed secrets.
    VaultTree { Users, UserEmails, UserIds, Secrets }
    /// The Janitor's tree: who does the work that one instance alone should.
    LeaseTree { Leases }
    /// The TokenBroker's trees: sign-ins, codes, tokens, grants and indexes.
    BrokerTree { Transactions, Codes, Tokens, Grants, GrantTokens, ClientGrants }
    /// The built-in development identity provider's tree: its codes and
    /// tokens, shared by every instance on the store.
    DevProviderTree { DevProvider }
}

/// Read and write access to the trees of `S` only: what an owner actor's
/// core holds. Its reads are those of [`ReadOnly`] (it derefs to one).
///
/// ```
/// use drawbridge::storage::{MemoryStore, Owned, RegistryTree, SharedStore};
/// let store: SharedStore = std::sync::Arc::new(MemoryStore::new());
/// let registry: Owned<RegistryTree> = Owned::new(store);
/// registry.insert(RegistryTree::Clients, b"mcp_a", vec![1]).unwrap();
/// ```
///
/// Writing another owner's tree does not compile:
///
/// ```compile_fail
/// use drawbridge::storage::{BrokerTree, MemoryStore, Owned, RegistryTree, SharedStore};
/// let store: SharedStore = std::sync::Arc::new(MemoryStore::new());
/// let registry: Owned<RegistryTree> = Owned::new(store);
/// registry.insert(BrokerTree::Grants, b"g_1", vec![1]).unwrap();
/// ```
pub struct Owned<S> {
    reads: ReadOnly<S>,
}

impl<S> Clone for Owned<S> {
    fn clone(&self) -> Self {
        Self {
            reads: self.reads.clone(),
        }
    }
}

impl<S> std::ops::Deref for Owned<S> {
    type Target = ReadOnly<S>;

    fn deref(&self) -> &ReadOnly<S> {
        &self.reads
    }
}

impl<S: TreeSet> Owned<S> {
    /// Hands the trees of `S` in `store` to their owner (start-up does).
    pub fn new(store: SharedStore) -> Self {
        Self {
            reads: ReadOnly {
                store,
                set: PhantomData,
            },
        }
    }

    fn store(&self) -> &SharedStore {
        &self.reads.store
    }

    /// Inserts and returns the previous value.
    pub fn insert(
        &self,
        tree: S,
        key: &[u8],
        value: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.store().insert(tree.into(), key, value)
    }

    /// Removes and returns the previous value.
    pub fn remove(&self, tree: S, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.store().remove(tree.into(), key)
    }

    /// Applies every write of `batch` atomically ([`Store::apply`](super::Store::apply)).
    pub fn apply(&self, batch: OwnedBatch<S>) -> Result<(), StoreError> {
        self.store().apply(batch.batch)
    }

    /// Applies the writes one after the other ([`Store::apply_in_order`](super::Store::apply_in_order)).
    pub fn apply_in_order(&self, batch: OwnedBatch<S>) -> Result<(), StoreError> {
        self.store().apply_in_order(batch.batch)
    }

    /// Makes every acknowledged write durable (the whole engine's).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.store().flush()
    }

    /// Answers when the engine does (a read of the schema record).
    pub fn ping(&self) -> Result<(), StoreError> {
        self.store().get(Tree::Meta, keys::SCHEMA_KEY).map(|_| ())
    }

    /// A view of the same trees that can only read, for the owner's reader.
    pub fn read_only(&self) -> ReadOnly<S> {
        self.reads.clone()
    }
}

/// Reads of the trees of `S`, nothing else: what an actor's reader holds,
/// so an answer given off the actor's thread (without the group-commit
/// barrier) cannot have written anything.
///
/// ```compile_fail
/// use drawbridge::storage::{MemoryStore, Owned, RegistryTree, SharedStore};
/// let store: SharedStore = std::sync::Arc::new(MemoryStore::new());
/// let reader = Owned::<RegistryTree>::new(store).read_only();
/// reader.insert(RegistryTree::Clients, b"mcp_a", vec![1]).unwrap();
/// ```
pub struct ReadOnly<S> {
    store: SharedStore,
    set: PhantomData<fn() -> S>,
}

impl<S> Clone for ReadOnly<S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            set: PhantomData,
        }
    }
}

impl<S: TreeSet> ReadOnly<S> {
    pub fn get(&self, tree: S, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.get(tree.into(), key)
    }

    /// See [`Store::scan_prefix`](super::Store::scan_prefix).
    pub fn scan_prefix(
        &self,
        tree: S,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        self.store.scan_prefix(tree.into(), prefix, after, limit)
    }

    pub fn len(&self, tree: S) -> Result<usize, StoreError> {
        self.store.len(tree.into())
    }
}

/// Writes to the trees of `S`, applied together by [`Owned::apply`] or
/// [`Owned::apply_in_order`].
pub struct OwnedBatch<S> {
    batch: Batch,
    set: PhantomData<fn() -> S>,
}

impl<S> Default for OwnedBatch<S> {
    fn default() -> Self {
        Self {
            batch: Batch::new(),
            set: PhantomData,
        }
    }
}

impl<S: TreeSet> OwnedBatch<S> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, tree: S, key: impl Into<Vec<u8>>, value: Vec<u8>) -> &mut Self {
        self.batch.insert(tree.into(), key, value);
        self
    }

    pub fn remove(&mut self, tree: S, key: impl Into<Vec<u8>>) -> &mut Self {
        self.batch.remove(tree.into(), key);
        self
    }

    /// A conditional write: see [`Batch::swap`].
    pub fn swap(
        &mut self,
        tree: S,
        key: impl Into<Vec<u8>>,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    ) -> &mut Self {
        self.batch.swap(tree.into(), key, expected, new);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }
}

/// How big the store is, and nothing else: what the metrics gauges and the
/// operators' statistics read.
#[derive(Clone)]
pub struct Sizes(SharedStore);

impl Sizes {
    pub fn new(store: SharedStore) -> Self {
        Self(store)
    }

    /// Number of entries in `tree`.
    pub fn len(&self, tree: Tree) -> Result<usize, StoreError> {
        self.0.len(tree)
    }

    /// Bytes used on disk (0 for memory engines).
    pub fn size_on_disk(&self) -> u64 {
        self.0.size_on_disk()
    }
}
