//! The sled engine: one sled database, one sled tree per [`Tree`].

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use super::{prefix_end, Batch, Entry, Op, Store, StoreError, Tree};

pub struct SledStore {
    /// `None` only between dropping a failed database and reopening it.
    open: RwLock<Option<Open>>,
    /// Where the database lives (`None` for a temporary one).
    dir: Option<PathBuf>,
}

struct Open {
    db: sled::Db,
    trees: Vec<(Tree, sled::Tree)>,
}

impl Open {
    fn tree(&self, tree: Tree) -> &sled::Tree {
        // Every Tree variant is opened in `Open::new`.
        &self
            .trees
            .iter()
            .find(|(t, _)| *t == tree)
            .expect("tree opened at start")
            .1
    }

    fn new(db: sled::Db) -> Result<Self, StoreError> {
        let trees = Tree::ALL
            .iter()
            .map(|t| Ok((*t, db.open_tree(t.name()).map_err(engine)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Self { db, trees })
    }
}

/// Why a sled transaction gave up.
enum Abort {
    Conflict(&'static str),
    Engine,
}

/// Bytes written to the data directory to check that it takes writes again
/// before a failed database is reopened (one sled segment and some).
const PROBE_BYTES: usize = 1 << 20;

fn engine(e: impl std::fmt::Display) -> StoreError {
    StoreError::Engine(e.to_string())
}

impl SledStore {
    /// Opens (creating if needed) the database in `dir`. Fails with a clear
    /// error when another process holds it.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = Self::open_db(dir)?;
        Ok(Self {
            open: RwLock::new(Some(Open::new(db)?)),
            dir: Some(dir.to_path_buf()),
        })
    }

    fn open_db(dir: &Path) -> Result<sled::Db, StoreError> {
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
        Ok(db)
    }

    /// A database that lives in a temporary directory removed on drop.
    pub fn temporary() -> Result<Self, StoreError> {
        let db = sled::Config::new().temporary(true).open().map_err(engine)?;
        Ok(Self {
            open: RwLock::new(Some(Open::new(db)?)),
            dir: None,
        })
    }

    fn with<R>(&self, f: impl FnOnce(&Open) -> Result<R, StoreError>) -> Result<R, StoreError> {
        let guard = self.open.read().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(open) => f(open),
            None => Err(StoreError::Engine(
                "the database is being reopened after a disk error".into(),
            )),
        }
    }

    /// Checks that the data directory takes a write and an fsync.
    fn probe(dir: &Path) -> std::io::Result<()> {
        use std::io::Write;
        let path = dir.join("write-probe");
        let result = (|| {
            let mut f = std::fs::File::create(&path)?;
            f.write_all(&vec![0u8; PROBE_BYTES])?;
            f.sync_all()
        })();
        let _ = std::fs::remove_file(&path);
        result
    }
}

impl Store for SledStore {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(|o| Ok(o.tree(tree).get(key).map_err(engine)?.map(|v| v.to_vec())))
    }

    fn insert(
        &self,
        tree: Tree,
        key: &[u8],
        value: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(|o| {
            Ok(o.tree(tree)
                .insert(key, value)
                .map_err(engine)?
                .map(|v| v.to_vec()))
        })
    }

    fn remove(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(|o| {
            Ok(o.tree(tree)
                .remove(key)
                .map_err(engine)?
                .map(|v| v.to_vec()))
        })
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
        self.with(|o| {
            o.tree(tree)
                .range::<Vec<u8>, _>((start, end))
                .take(limit)
                .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(engine))
                .collect()
        })
    }

    fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        if batch.ops().len() == 1 {
            // One write is atomic by itself; a transaction would only add
            // two log-buffer rolls.
            return self.apply_in_order(batch);
        }
        let trees = batch.trees();
        let handles: Vec<sled::Tree> =
            self.with(|o| Ok(trees.iter().map(|t| o.tree(*t).clone()).collect()))?;
        let result: Result<(), TransactionError<Abort>> = handles.as_slice().transaction(|txs| {
            for op in batch.ops() {
                let index = trees
                    .iter()
                    .position(|t| *t == op.tree())
                    .ok_or(ConflictableTransactionError::Abort(Abort::Engine))?;
                let tx = &txs[index];
                let key = op.key();
                match op {
                    Op::Insert { value, .. } => {
                        tx.insert(key, value.as_slice())?;
                    }
                    Op::Remove { .. } => {
                        tx.remove(key)?;
                    }
                    Op::Swap {
                        tree,
                        expected,
                        new,
                        ..
                    } => {
                        if tx.get(key)?.as_deref() != expected.as_deref() {
                            return Err(ConflictableTransactionError::Abort(Abort::Conflict(
                                tree.name(),
                            )));
                        }
                        match new {
                            Some(value) => tx.insert(key, value.as_slice())?,
                            None => tx.remove(key)?,
                        };
                    }
                }
            }
            Ok(())
        });
        result.map_err(|e| match e {
            TransactionError::Abort(Abort::Conflict(tree)) => StoreError::Conflict { tree },
            TransactionError::Abort(Abort::Engine) => StoreError::Engine("batch aborted".into()),
            TransactionError::Storage(e) => engine(e),
        })
    }

    fn apply_in_order(&self, batch: Batch) -> Result<(), StoreError> {
        for op in batch.ops() {
            match op {
                Op::Insert { tree, key, value } => {
                    self.insert(*tree, key, value.clone())?;
                }
                Op::Remove { tree, key } => {
                    self.remove(*tree, key)?;
                }
                Op::Swap {
                    tree,
                    key,
                    expected,
                    new,
                } => {
                    let swapped = self.with(|o| {
                        o.tree(*tree)
                            .compare_and_swap(key, expected.as_deref(), new.as_deref())
                            .map_err(engine)
                    })?;
                    if swapped.is_err() {
                        return Err(StoreError::Conflict { tree: tree.name() });
                    }
                }
            }
        }
        Ok(())
    }

    fn len(&self, tree: Tree) -> Result<usize, StoreError> {
        self.with(|o| Ok(o.tree(tree).len()))
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.with(|o| o.db.flush().map(|_| ()).map_err(engine))
    }

    fn is_persistent(&self) -> bool {
        true
    }

    /// sled refuses every write after one failed disk write, even once the
    /// disk has room again. When the directory takes writes again, drop the
    /// database and reopen it: its log recovers everything that was flushed
    /// (and so acknowledged); unflushed writes were never acknowledged.
    fn recover(&self) -> Result<(), StoreError> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        Self::probe(dir).map_err(|e| {
            StoreError::Engine(format!("{} still refuses writes: {e}", dir.display()))
        })?;
        let mut guard = self.open.write().unwrap_or_else(|p| p.into_inner());
        drop(guard.take());
        let reopened = Self::open_db(dir).and_then(Open::new)?;
        *guard = Some(reopened);
        Ok(())
    }

    fn size_on_disk(&self) -> u64 {
        self.with(|o| Ok(o.db.size_on_disk().unwrap_or(0)))
            .unwrap_or(0)
    }
}
