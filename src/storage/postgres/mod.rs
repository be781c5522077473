//! The PostgreSQL engine: every tree in one table, `drawbridge_kv (tree,
//! key, value)`, so several Drawbridge instances can share one database.
//!
//! The [`Store`] trait is synchronous and is called from actor threads and
//! from HTTP workers (which run inside a tokio runtime, where tokio's own
//! blocking waits panic). So the engine owns a small runtime of its own:
//! each call runs there and its answer comes back over a standard channel.
//! Every call is bounded twice: the server cancels a statement after
//! `statement_timeout`, and the caller gives up [`connect::MARGIN`] later.
//! A batch is one transaction, so a cancelled one leaves nothing written.

mod connect;
mod migrations;

use std::time::{Duration, Instant};

use deadpool_postgres::{Client, Pool};
use futures_util::future::BoxFuture;
use tokio_postgres::error::SqlState;

pub use connect::{masked_url, parse_url, PgOptions};
pub use migrations::SCHEMA_VERSION;

use super::{prefix_end, Batch, Entry, Op, Store, StoreError, Tree};

const GET: &str = "SELECT value FROM drawbridge_kv WHERE tree = $1 AND key = $2";
const GET_FOR_UPDATE: &str =
    "SELECT value FROM drawbridge_kv WHERE tree = $1 AND key = $2 FOR UPDATE";
const UPSERT: &str = "INSERT INTO drawbridge_kv (tree, key, value) VALUES ($1, $2, $3) \
     ON CONFLICT (tree, key) DO UPDATE SET value = EXCLUDED.value";
const DELETE: &str = "DELETE FROM drawbridge_kv WHERE tree = $1 AND key = $2 RETURNING value";
const SWAP_UPDATE: &str =
    "UPDATE drawbridge_kv SET value = $4 WHERE tree = $1 AND key = $2 AND value = $3";
const SWAP_DELETE: &str = "DELETE FROM drawbridge_kv WHERE tree = $1 AND key = $2 AND value = $3";
const SWAP_CREATE: &str = "INSERT INTO drawbridge_kv (tree, key, value) VALUES ($1, $2, $3) \
     ON CONFLICT (tree, key) DO NOTHING";
const COUNT: &str = "SELECT COUNT(*) FROM drawbridge_kv WHERE tree = $1";
const SIZE: &str = "SELECT pg_total_relation_size('drawbridge_kv')";

/// A prefix scan: `[after-cursor or prefix] .. prefix_end`, in key order.
/// Four texts rather than `$n IS NULL OR …`, so every bound is an index bound.
fn scan_sql(exclusive_start: bool, bounded: bool) -> &'static str {
    match (exclusive_start, bounded) {
        (false, true) => "SELECT key, value FROM drawbridge_kv WHERE tree = $1 AND key >= $2 AND key < $3 ORDER BY key LIMIT $4",
        (true, true) => "SELECT key, value FROM drawbridge_kv WHERE tree = $1 AND key > $2 AND key < $3 ORDER BY key LIMIT $4",
        (false, false) => "SELECT key, value FROM drawbridge_kv WHERE tree = $1 AND key >= $2 ORDER BY key LIMIT $3",
        (true, false) => "SELECT key, value FROM drawbridge_kv WHERE tree = $1 AND key > $2 ORDER BY key LIMIT $3",
    }
}

/// How one call to the database went, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    Ok,
    /// A conditional write found another value (another instance first).
    Conflict,
    /// No answer within the statement timeout and its margin.
    Timeout,
    /// No connection could be had (the database down or refusing).
    Unavailable,
    /// The database answered with an error.
    Failed,
}

impl CallOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Ok => "ok",
            CallOutcome::Conflict => "conflict",
            CallOutcome::Timeout => "timeout",
            CallOutcome::Unavailable => "unavailable",
            CallOutcome::Failed => "failed",
        }
    }
}

/// The connection pool at one moment.
#[derive(Debug, Clone, Copy)]
pub struct PoolUse {
    pub open: usize,
    pub idle: usize,
    pub max: usize,
    /// Calls waiting for a connection.
    pub waiting: usize,
}

/// Told of every call: its operation (`get`, `apply`, …), how long it
/// took, how it went, and the pool after it.
pub type Observer = Box<dyn Fn(&'static str, Duration, CallOutcome, PoolUse) + Send + Sync>;

pub struct PgStore {
    observer: Option<std::sync::Arc<Observer>>,
    pool: Pool,
    /// `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
    /// A call gives up after this long (statement timeout + margin).
    limit: Duration,
    statement_timeout: Duration,
    schema_version: i32,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("schema_version", &self.schema_version)
            .finish_non_exhaustive()
    }
}

/// `tokio_postgres` results as [`StoreError`]s naming what was being done.
pub(crate) trait Pg<T> {
    fn pg(self, what: &str) -> Result<T, StoreError>;
}

impl<T> Pg<T> for Result<T, tokio_postgres::Error> {
    fn pg(self, what: &str) -> Result<T, StoreError> {
        self.map_err(|e| {
            StoreError::Engine(match e.as_db_error() {
                Some(db) if db.code() == &SqlState::QUERY_CANCELED => format!(
                    "PostgreSQL: {what}: cancelled by the server's statement timeout \
                     (storage.statement_timeout_ms); nothing of it was written"
                ),
                Some(db) => format!(
                    "PostgreSQL: {what}: {} ({})",
                    db.message(),
                    db.code().code()
                ),
                None => match std::error::Error::source(&e) {
                    Some(cause) => format!("PostgreSQL: {what}: {e}: {cause}"),
                    None => format!("PostgreSQL: {what}: {e}"),
                },
            })
        })
    }
}

type Work<'c, T> = BoxFuture<'c, Result<T, StoreError>>;

impl PgStore {
    /// Connects, brings the schema up to date (or refuses a database whose
    /// schema is newer than this build) and keeps a pool of connections.
    pub fn open(options: &PgOptions) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("drawbridge-pg")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Engine(format!("PostgreSQL engine runtime: {e}")))?;
        let pool = connect::pool(options)?;
        let mut store = Self {
            observer: None,
            pool,
            runtime: Some(runtime),
            limit: options.statement_timeout + connect::MARGIN,
            statement_timeout: options.statement_timeout,
            schema_version: 0,
        };
        store.schema_version =
            store.call("migrating the schema", |c| Box::pin(migrations::migrate(c)))?;
        Ok(store)
    }

    /// Tells `observer` of every call from now on (the metrics).
    pub fn observed(mut self, observer: Observer) -> Self {
        self.observer = Some(std::sync::Arc::new(observer));
        self
    }

    /// The schema version of the database (after the migrations at open).
    pub fn schema_version(&self) -> i32 {
        self.schema_version
    }

    /// Runs `work` with a pooled connection on the engine's runtime and
    /// waits for its answer; gives up after `self.limit`. A connection
    /// whose statement did not answer in time is closed, not reused.
    fn call<T, F>(&self, what: &'static str, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Client) -> Work<'c, T> + Send + 'static,
    {
        let Some(runtime) = &self.runtime else {
            return Err(StoreError::Engine("PostgreSQL engine closed".into()));
        };
        let (limit, statement_timeout) = (self.limit, self.statement_timeout);
        let late = move || {
            StoreError::Engine(format!(
                "PostgreSQL: {what}: no answer within {} ms (statement timeout {} ms)",
                limit.as_millis(),
                statement_timeout.as_millis()
            ))
        };
        let deadline = tokio::time::Instant::now() + limit;
        let pool = self.pool.clone();
        let observer = self.observer.clone();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let began = Instant::now();
            let (result, outcome) = match tokio::time::timeout_at(deadline, pool.get()).await {
                Err(_) => (Err(late()), CallOutcome::Timeout),
                Ok(Err(e)) => (Err(pool_error(what, e)), CallOutcome::Unavailable),
                Ok(Ok(mut client)) => {
                    match tokio::time::timeout_at(deadline, work(&mut client)).await {
                        Ok(Ok(value)) => (Ok(value), CallOutcome::Ok),
                        Ok(Err(e @ StoreError::Conflict { .. })) => (Err(e), CallOutcome::Conflict),
                        Ok(Err(e)) => (Err(e), CallOutcome::Failed),
                        Err(_) => {
                            drop(deadpool_postgres::Object::take(client));
                            (Err(late()), CallOutcome::Timeout)
                        }
                    }
                }
            };
            if let Some(observe) = observer {
                let status = pool.status();
                let in_use = PoolUse {
                    open: status.size,
                    idle: status.available,
                    max: status.max_size,
                    waiting: status.waiting,
                };
                observe(what, began.elapsed(), outcome, in_use);
            }
            let _ = tx.send(result);
        });
        let started = Instant::now();
        // The task answers by the deadline; the extra second covers a
        // runtime too busy to run it on time.
        match rx.recv_timeout(limit + Duration::from_secs(1)) {
            Ok(result) => result,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(late()),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                Err(StoreError::Engine(format!(
                    "PostgreSQL: {what}: the call failed after {:?}",
                    started.elapsed()
                )))
            }
        }
    }
}

fn pool_error(what: &str, e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => Err::<(), _>(e).pg(what).unwrap_err(),
        other => StoreError::Engine(format!("PostgreSQL: {what}: {other}")),
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.pool.close();
        // May run on a thread inside another runtime, where a plain drop
        // of a runtime panics.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Runs one op of a batch inside `tx`: `Ok(false)` when a swap found
/// another value than it expected.
async fn write_op(tx: &deadpool_postgres::Transaction<'_>, op: &Op) -> Result<bool, StoreError> {
    let tree = op.tree().name();
    let key = op.key();
    let what = "applying a batch";
    Ok(match op {
        Op::Insert { value, .. } => {
            let st = tx.prepare_cached(UPSERT).await.pg(what)?;
            tx.execute(&st, &[&tree, &key, value]).await.pg(what)?;
            true
        }
        Op::Remove { .. } => {
            let st = tx.prepare_cached(DELETE).await.pg(what)?;
            tx.execute(&st, &[&tree, &key]).await.pg(what)?;
            true
        }
        Op::Swap { expected, new, .. } => {
            let (sql, params): (&str, Vec<&(dyn tokio_postgres::types::ToSql + Sync)>) =
                match (expected, new) {
                    (Some(old), Some(new)) => (SWAP_UPDATE, vec![&tree, &key, old, new]),
                    (Some(old), None) => (SWAP_DELETE, vec![&tree, &key, old]),
                    (None, Some(new)) => (SWAP_CREATE, vec![&tree, &key, new]),
                    // Absent and staying absent: a check only.
                    (None, None) => {
                        let st = tx.prepare_cached(GET_FOR_UPDATE).await.pg(what)?;
                        return Ok(tx.query_opt(&st, &[&tree, &key]).await.pg(what)?.is_none());
                    }
                };
            let st = tx.prepare_cached(sql).await.pg(what)?;
            tx.execute(&st, &params).await.pg(what)? == 1
        }
    })
}

impl Store for PgStore {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let (tree, key) = (tree.name(), key.to_vec());
        self.call("get", move |c| {
            Box::pin(async move {
                let st = c.prepare_cached(GET).await.pg("get")?;
                let row = c.query_opt(&st, &[&tree, &key]).await.pg("get")?;
                Ok(row.map(|r| r.get(0)))
            })
        })
    }

    fn insert(
        &self,
        tree: Tree,
        key: &[u8],
        value: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let (tree, key) = (tree.name(), key.to_vec());
        self.call("insert", move |c| {
            Box::pin(async move {
                let tx = c.transaction().await.pg("insert")?;
                let st = tx.prepare_cached(GET_FOR_UPDATE).await.pg("insert")?;
                let old = tx.query_opt(&st, &[&tree, &key]).await.pg("insert")?;
                let st = tx.prepare_cached(UPSERT).await.pg("insert")?;
                tx.execute(&st, &[&tree, &key, &value]).await.pg("insert")?;
                tx.commit().await.pg("insert")?;
                Ok(old.map(|r| r.get(0)))
            })
        })
    }

    fn remove(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let (tree, key) = (tree.name(), key.to_vec());
        self.call("remove", move |c| {
            Box::pin(async move {
                let st = c.prepare_cached(DELETE).await.pg("remove")?;
                let row = c.query_opt(&st, &[&tree, &key]).await.pg("remove")?;
                Ok(row.map(|r| r.get(0)))
            })
        })
    }

    fn scan_prefix(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let tree = tree.name();
        let (start, exclusive) = match after {
            Some(a) if a >= prefix => (a.to_vec(), true),
            _ => (prefix.to_vec(), false),
        };
        let end = prefix_end(prefix);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.call("scan", move |c| {
            Box::pin(async move {
                let st = c
                    .prepare_cached(scan_sql(exclusive, end.is_some()))
                    .await
                    .pg("scan")?;
                let rows = match &end {
                    Some(end) => c.query(&st, &[&tree, &start, end, &limit]).await,
                    None => c.query(&st, &[&tree, &start, &limit]).await,
                }
                .pg("scan")?;
                Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
            })
        })
    }

    /// One transaction: a swap that finds another value rolls it back.
    fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.call("apply", move |c| {
            Box::pin(async move {
                let tx = c.transaction().await.pg("applying a batch")?;
                for op in batch.ops() {
                    if !write_op(&tx, op).await? {
                        tx.rollback().await.pg("applying a batch")?;
                        return Err(StoreError::Conflict {
                            tree: op.tree().name(),
                        });
                    }
                }
                tx.commit().await.pg("applying a batch")
            })
        })
    }

    /// One transaction too: all or nothing is stronger than in order.
    fn apply_in_order(&self, batch: Batch) -> Result<(), StoreError> {
        self.apply(batch)
    }

    fn len(&self, tree: Tree) -> Result<usize, StoreError> {
        let tree = tree.name();
        self.call("count", move |c| {
            Box::pin(async move {
                let st = c.prepare_cached(COUNT).await.pg("count")?;
                let n: i64 = c.query_one(&st, &[&tree]).await.pg("count")?.get(0);
                Ok(usize::try_from(n).unwrap_or(0))
            })
        })
    }

    /// A committed transaction is already durable.
    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn is_persistent(&self) -> bool {
        true
    }

    fn is_remote(&self) -> bool {
        true
    }

    fn size_on_disk(&self) -> u64 {
        self.call("size", move |c| {
            Box::pin(async move {
                let n: i64 = c.query_one(SIZE, &[]).await.pg("size")?.get(0);
                Ok(u64::try_from(n).unwrap_or(0))
            })
        })
        .unwrap_or(0)
    }
}

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
