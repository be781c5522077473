//! Test engines: stores that behave like a database shared by several
//! instances, for the tests of the actors' cross-instance rules.

use super::{MemoryStore, SharedStore, Tree};

/// The stores the cross-instance tests run on: a memory store with slow
/// reads, and a fresh PostgreSQL database when the test server is there
/// (see `postgres::testing`).
pub fn shared_stores() -> Vec<(&'static str, SharedStore)> {
    let mut stores: Vec<(&'static str, SharedStore)> =
        vec![("memory", std::sync::Arc::new(SlowReads::default()))];
    if let Some(db) = super::postgres::testing::TestDb::create() {
        stores.push(("postgres", std::sync::Arc::new(db.engine())));
    }
    stores
}

/// A memory store whose reads take a millisecond, as a database round
/// trip does: instances that start together all read before any writes,
/// so the race between read and write is real in every round.
#[derive(Default)]
pub struct SlowReads(MemoryStore);

impl super::Store for SlowReads {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, super::StoreError> {
        std::thread::sleep(std::time::Duration::from_millis(1));
        self.0.get(tree, key)
    }
    fn insert(
        &self,
        tree: Tree,
        key: &[u8],
        value: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, super::StoreError> {
        self.0.insert(tree, key, value)
    }
    fn remove(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, super::StoreError> {
        self.0.remove(tree, key)
    }
    fn scan_prefix(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<super::Entry>, super::StoreError> {
        self.0.scan_prefix(tree, prefix, after, limit)
    }
    fn apply(&self, batch: super::Batch) -> Result<(), super::StoreError> {
        self.0.apply(batch)
    }
    fn len(&self, tree: Tree) -> Result<usize, super::StoreError> {
        self.0.len(tree)
    }
    fn flush(&self) -> Result<(), super::StoreError> {
        Ok(())
    }
    fn is_persistent(&self) -> bool {
        false
    }
    fn size_on_disk(&self) -> u64 {
        0
    }
}
