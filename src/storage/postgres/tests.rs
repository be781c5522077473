//! What only the PostgreSQL engine does: migrations, its timeouts, and
//! several instances on one database. (The behaviour every engine shares
//! is checked in `storage::tests`.)

use std::time::{Duration, Instant};

use super::testing::TestDb;
use super::{PgOptions, PgStore, SCHEMA_VERSION};
use crate::storage::{Batch, Store, StoreError, Tree};

#[test]
fn instances_starting_together_on_an_empty_database_apply_the_schema_once() {
    let Some(db) = TestDb::create() else { return };
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(3));
    let opened: Vec<Result<PgStore, StoreError>> = (0..3)
        .map(|_| {
            let (options, barrier) = (db.options(Duration::from_secs(5)), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                PgStore::open(&options)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    for store in &opened {
        let store = store.as_ref().expect("every instance opens");
        assert_eq!(store.schema_version(), SCHEMA_VERSION);
    }
    assert_eq!(
        db.query_text("SELECT COUNT(*)::TEXT FROM drawbridge_schema_migrations"),
        SCHEMA_VERSION.to_string()
    );
    // They share one table.
    let (a, b) = (opened[0].as_ref().unwrap(), opened[2].as_ref().unwrap());
    a.insert(Tree::Clients, b"k", b"v".to_vec()).unwrap();
    assert_eq!(b.get(Tree::Clients, b"k").unwrap(), Some(b"v".to_vec()));
    assert!(b.size_on_disk() > 0);
}

#[test]
fn a_database_with_a_newer_schema_is_refused() {
    let Some(db) = TestDb::create() else { return };
    drop(db.open());
    db.execute("INSERT INTO drawbridge_schema_migrations (version) VALUES (99)")
        .unwrap();
    let err = PgStore::open(&db.options(Duration::from_secs(5))).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("version 99") && message.contains("newer"),
        "{message}"
    );
}

#[test]
fn a_batch_cancelled_by_the_statement_timeout_writes_nothing() {
    let Some(db) = TestDb::create() else { return };
    let store = PgStore::open(&db.options(Duration::from_millis(300))).unwrap();
    store.insert(Tree::Codes, b"held", b"v".to_vec()).unwrap();
    // Another session holds the row: the batch's second write waits for
    // it until the server cancels the statement.
    let release = db.hold_row_lock(Tree::Codes, b"held");
    let mut batch = Batch::new();
    batch
        .insert(Tree::Tokens, b"t".to_vec(), b"1".to_vec())
        .insert(Tree::Codes, b"held".to_vec(), b"w".to_vec());
    let started = Instant::now();
    let err = store.apply(batch).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(&err, StoreError::Engine(m) if m.contains("statement timeout")),
        "{err}"
    );
    drop(release);
    assert_eq!(store.get(Tree::Tokens, b"t").unwrap(), None);
    assert_eq!(
        store.get(Tree::Codes, b"held").unwrap(),
        Some(b"v".to_vec())
    );
    // The connection is usable again.
    let mut batch = Batch::new();
    batch.insert(Tree::Tokens, b"t".to_vec(), b"1".to_vec());
    store.apply(batch).unwrap();
    assert_eq!(store.get(Tree::Tokens, b"t").unwrap(), Some(b"1".to_vec()));
}

/// A server that takes the connection and never answers.
#[test]
fn an_unanswering_database_is_an_error_in_bounded_time_not_a_hang() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let options = PgOptions {
        url: format!("postgres://drawbridge:secret@127.0.0.1:{port}/drawbridge?sslmode=disable"),
        ca_pem: None,
        pool_size: 2,
        statement_timeout: Duration::from_millis(200),
    };
    let started = Instant::now();
    let err = PgStore::open(&options).unwrap_err();
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(4), "waited {waited:?}");
    let message = err.to_string();
    assert!(message.contains("PostgreSQL"), "{message}");
    assert!(!message.contains("secret"), "{message}");

    drop(silent);
    let started = Instant::now();
    let err = PgStore::open(&options).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(err.to_string().contains("PostgreSQL"), "{err}");
}
