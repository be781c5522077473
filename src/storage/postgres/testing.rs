//! Test databases: each test gets a fresh database on the server that
//! `DRAWBRIDGE_TEST_DATABASE_URL` names (scripts/test.sh starts one),
//! dropped when the test is done, so tests running at once never see each
//! other's rows.

use std::time::Duration;

use super::{PgOptions, PgStore};
use crate::storage::{Batch, Entry, Store, StoreError, Tree};

pub const URL_VAR: &str = "DRAWBRIDGE_TEST_DATABASE_URL";

/// The test server's URL. Unset: outside CI the PostgreSQL tests are
/// skipped (one line on stderr); under `CI=true` they are required.
pub fn server_url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").as_deref() == Ok("true") => panic!(
            "{URL_VAR} is not set: under CI=true the PostgreSQL engine tests are required (scripts/test.sh starts a server)"
        ),
        _ => {
            static SKIP: std::sync::Once = std::sync::Once::new();
            SKIP.call_once(|| {
                eprintln!("skipped: the PostgreSQL engine tests ({URL_VAR} is not set; scripts/test.sh starts a server)")
            });
            None
        }
    }
}

/// A database of its own, dropped with this value.
pub struct TestDb {
    pub url: String,
    name: String,
    server: String,
}

impl TestDb {
    /// `None` when no test server is configured (see [`server_url`]).
    pub fn create() -> Option<Self> {
        let server = server_url()?;
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).expect("random bytes");
        let name = format!(
            "drawbridge_test_{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        execute(&server, &format!("CREATE DATABASE {name}")).expect("CREATE DATABASE");
        let mut url = url::Url::parse(&server).expect("a postgres:// URL");
        url.set_path(&name);
        Some(Self {
            url: url.to_string(),
            name,
            server,
        })
    }

    pub fn options(&self, statement_timeout: Duration) -> PgOptions {
        PgOptions {
            url: self.url.clone(),
            ca_pem: None,
            pool_size: 8,
            statement_timeout,
        }
    }

    pub fn open(&self) -> PgStore {
        PgStore::open(&self.options(Duration::from_secs(5))).expect("open the test database")
    }

    /// Runs `sql` on this database through a connection of its own.
    pub fn execute(&self, sql: &str) -> Result<(), tokio_postgres::Error> {
        execute(&self.url, sql)
    }

    /// The first column of the first row of `sql`, as text.
    pub fn query_text(&self, sql: &str) -> String {
        let sql = sql.to_owned();
        with_client(&self.url, move |client| {
            Box::pin(async move {
                let row = client.query_one(&sql, &[]).await?;
                Ok(row.get::<_, String>(0))
            })
        })
        .expect("query")
    }

    /// Holds a row lock on `(tree, key)` in an open transaction until the
    /// returned sender is dropped.
    pub fn hold_row_lock(&self, tree: Tree, key: &[u8]) -> std::sync::mpsc::Sender<()> {
        let (url, key) = (self.url.clone(), key.to_vec());
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            with_client(&url, move |client| {
                Box::pin(async move {
                    let tx = client.transaction().await?;
                    tx.query(
                        "SELECT value FROM drawbridge_kv WHERE tree = $1 AND key = $2 FOR UPDATE",
                        &[&tree.name(), &key],
                    )
                    .await?;
                    held_tx.send(()).expect("the test waits");
                    let _ = tokio::task::spawn_blocking(move || release_rx.recv()).await;
                    tx.rollback().await
                })
            })
            .expect("hold a row lock");
        });
        held_rx.recv().expect("row lock taken");
        release_tx
    }

    /// The store over this database, dropping it after the store.
    pub fn engine(self) -> PgEngine {
        PgEngine {
            store: self.open(),
            _db: self,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = execute(
            &self.server,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

type Job<T> = Box<
    dyn for<'c> FnOnce(
        &'c mut tokio_postgres::Client,
    )
        -> futures_util::future::BoxFuture<'c, Result<T, tokio_postgres::Error>>,
>;

/// One connection on a runtime of the calling thread (tests run on plain
/// threads).
fn with_client<T>(
    url: &str,
    job: impl for<'c> FnOnce(
            &'c mut tokio_postgres::Client,
        )
            -> futures_util::future::BoxFuture<'c, Result<T, tokio_postgres::Error>>
        + 'static,
) -> Result<T, tokio_postgres::Error> {
    let job: Job<T> = Box::new(job);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a test runtime");
    runtime.block_on(async move {
        let (mut client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        let connection = tokio::spawn(connection);
        let result = job(&mut client).await;
        drop(client);
        let _ = connection.await;
        result
    })
}

fn execute(url: &str, sql: &str) -> Result<(), tokio_postgres::Error> {
    let sql = sql.to_owned();
    with_client(url, move |client| {
        Box::pin(async move { client.batch_execute(&sql).await })
    })
}

/// A [`PgStore`] on its own test database.
pub struct PgEngine {
    store: PgStore,
    _db: TestDb,
}

impl Store for PgEngine {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.get(tree, key)
    }
    fn insert(&self, t: Tree, k: &[u8], v: Vec<u8>) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.insert(t, k, v)
    }
    fn remove(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.remove(tree, key)
    }
    fn scan_prefix(
        &self,
        t: Tree,
        p: &[u8],
        a: Option<&[u8]>,
        l: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        self.store.scan_prefix(t, p, a, l)
    }
    fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        self.store.apply(batch)
    }
    fn apply_in_order(&self, batch: Batch) -> Result<(), StoreError> {
        self.store.apply_in_order(batch)
    }
    fn len(&self, tree: Tree) -> Result<usize, StoreError> {
        self.store.len(tree)
    }
    fn flush(&self) -> Result<(), StoreError> {
        self.store.flush()
    }
    fn is_remote(&self) -> bool {
        true
    }
    fn is_persistent(&self) -> bool {
        self.store.is_persistent()
    }
    fn size_on_disk(&self) -> u64 {
        self.store.size_on_disk()
    }
}
