//! The in-memory engine: ordered maps behind one lock. Nothing touches disk.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use super::{Batch, Entry, Op, Store, StoreError, Tree};

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Default)]
pub struct MemoryStore {
    trees: RwLock<HashMap<Tree, Map>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn read<R>(&self, f: impl FnOnce(&HashMap<Tree, Map>) -> R) -> R {
        // A poisoned lock only means a panic elsewhere; the maps stay consistent
        // because every mutation below is a single call.
        let guard = self.trees.read().unwrap_or_else(|p| p.into_inner());
        f(&guard)
    }

    fn write<R>(&self, f: impl FnOnce(&mut HashMap<Tree, Map>) -> R) -> R {
        let mut guard = self.trees.write().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

/// Makes one write (a swap's check is the caller's).
fn write_op(t: &mut HashMap<Tree, Map>, op: &Op) {
    let (tree, key, value) = match op {
        Op::Insert { tree, key, value } => (tree, key, Some(value)),
        Op::Remove { tree, key } => (tree, key, None),
        Op::Swap { tree, key, new, .. } => (tree, key, new.as_ref()),
    };
    match value {
        Some(value) => {
            t.entry(*tree)
                .or_default()
                .insert(key.clone(), value.clone());
        }
        None => {
            if let Some(m) = t.get_mut(tree) {
                m.remove(key);
            }
        }
    }
}

impl Store for MemoryStore {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.read(|t| t.get(&tree).and_then(|m| m.get(key).cloned())))
    }

    fn insert(
        &self,
        tree: Tree,
        key: &[u8],
        value: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.write(|t| t.entry(tree).or_default().insert(key.to_vec(), value)))
    }

    fn remove(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.write(|t| t.get_mut(&tree).and_then(|m| m.remove(key))))
    }

    fn scan_prefix(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        use std::ops::Bound;
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded(a.to_vec()),
            _ => Bound::Included(prefix.to_vec()),
        };
        Ok(self.read(|t| {
            t.get(&tree).map_or_else(Vec::new, |m| {
                m.range((start, Bound::Unbounded))
                    .take_while(|(k, _)| k.starts_with(prefix))
                    .take(limit)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
        }))
    }

    fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        self.write(|t| {
            // Every swap is checked before anything is written, under the
            // one lock: all or nothing.
            for op in batch.ops() {
                if let Op::Swap {
                    tree,
                    key,
                    expected,
                    ..
                } = op
                {
                    if t.get(tree).and_then(|m| m.get(key)) != expected.as_ref() {
                        return Err(StoreError::Conflict { tree: tree.name() });
                    }
                }
            }
            for op in batch.ops() {
                write_op(t, op);
            }
            Ok(())
        })
    }

    /// Atomic, as [`apply`](Self::apply): under one lock that costs
    /// nothing more, and a swap that conflicts leaves nothing behind.
    fn apply_in_order(&self, batch: Batch) -> Result<(), StoreError> {
        self.apply(batch)
    }

    fn len(&self, tree: Tree) -> Result<usize, StoreError> {
        Ok(self.read(|t| t.get(&tree).map_or(0, |m| m.len())))
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn is_persistent(&self) -> bool {
        false
    }

    fn size_on_disk(&self) -> u64 {
        0
    }
}
