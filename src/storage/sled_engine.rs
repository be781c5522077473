//! The sled engine: one sled database, one sled tree per [`Tree`].

use std::path::Path;

use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use super::{prefix_end, Batch, Entry, Op, Store, StoreError, Tree};

pub struct SledStore {
    db: sled::Db,
    trees: Vec<(Tree, sled::Tree)>,
}

fn engine(e: impl std::fmt::Display) -> StoreError {
    StoreError::Engine(e.to_string())
}

impl SledStore {
    /// Opens (creating if needed) the database in `dir`. Fails with a clear
    /// error when another process holds it.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        // sled's background flusher can hold the directory lock for a moment
        // after the previous owner closed it (a restart, a CLI command right
        // after a stop): wait briefly for it rather than fail.
        let mut attempts = 0;
        let db = loop {
            match sled::Config::new()
                .path(dir)
                .mode(sled::Mode::HighThroughput)
                .open()
            {
                Ok(db) => break db,
                Err(e) if attempts < 40 && e.to_string().contains("could not acquire lock") => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => {
                    return Err(StoreError::Engine(format!(
                        "cannot open {}: {e}",
                        dir.display()
                    )))
                }
            }
        };
        Self::from_db(db)
    }

    /// A database that lives in a temporary directory removed on drop.
    pub fn temporary() -> Result<Self, StoreError> {
        let db = sled::Config::new().temporary(true).open().map_err(engine)?;
        Self::from_db(db)
    }

    fn from_db(db: sled::Db) -> Result<Self, StoreError> {
        let trees = Tree::ALL
            .iter()
            .map(|t| Ok((*t, db.open_tree(t.name()).map_err(engine)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Self { db, trees })
    }

    fn tree(&self, tree: Tree) -> &sled::Tree {
        // Every Tree variant is opened in `from_db`.
        &self
            .trees
            .iter()
            .find(|(t, _)| *t == tree)
            .expect("tree opened at start")
            .1
    }
}

impl Store for SledStore {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .tree(tree)
            .get(key)
            .map_err(engine)?
            .map(|v| v.to_vec()))
    }

    fn insert(
        &self,
        tree: Tree,
        key: &[u8],
        value: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .tree(tree)
            .insert(key, value)
            .map_err(engine)?
            .map(|v| v.to_vec()))
    }

    fn remove(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .tree(tree)
            .remove(key)
            .map_err(engine)?
            .map(|v| v.to_vec()))
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
        let end = prefix_end(prefix).map_or(Bound::Unbounded, Bound::Excluded);
        self.tree(tree)
            .range::<Vec<u8>, _>((start, end))
            .take(limit)
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(engine))
            .collect()
    }

    fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        let trees = batch.trees();
        let handles: Vec<sled::Tree> = trees.iter().map(|t| self.tree(*t).clone()).collect();
        let result: Result<(), TransactionError<()>> = handles.as_slice().transaction(|txs| {
            for op in batch.ops() {
                let (tree, key) = match op {
                    Op::Insert { tree, key, .. } | Op::Remove { tree, key } => (tree, key),
                };
                let index = trees
                    .iter()
                    .position(|t| t == tree)
                    .ok_or(ConflictableTransactionError::Abort(()))?;
                match op {
                    Op::Insert { value, .. } => {
                        txs[index].insert(key.as_slice(), value.as_slice())?;
                    }
                    Op::Remove { .. } => {
                        txs[index].remove(key.as_slice())?;
                    }
                }
            }
            Ok(())
        });
        result.map_err(|e| match e {
            TransactionError::Abort(()) => StoreError::Engine("batch aborted".into()),
            TransactionError::Storage(e) => engine(e),
        })
    }

    fn len(&self, tree: Tree) -> Result<usize, StoreError> {
        Ok(self.tree(tree).len())
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(engine)
    }

    fn is_persistent(&self) -> bool {
        true
    }

    fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}
