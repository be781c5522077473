//! The same behaviour checks run against every engine.

use super::*;

/// Every engine, each empty: PostgreSQL too when
/// `DRAWBRIDGE_TEST_DATABASE_URL` names a server (a fresh database per
/// call; required under `CI=true`, see `postgres::testing`).
fn engines() -> Vec<(&'static str, Box<dyn Store>)> {
    let mut engines: Vec<(&'static str, Box<dyn Store>)> = vec![
        ("memory", Box::new(MemoryStore::new())),
        ("sled", Box::new(SledStore::temporary().unwrap())),
    ];
    if let Some(db) = postgres::testing::TestDb::create() {
        engines.push(("postgres", Box::new(db.engine())));
    }
    engines
}

#[test]
fn insert_get_remove_round_trip_and_trees_are_separate() {
    for (name, s) in engines() {
        assert_eq!(
            s.insert(Tree::Clients, b"a", b"1".to_vec()).unwrap(),
            None,
            "{name}"
        );
        assert_eq!(
            s.insert(Tree::Clients, b"a", b"2".to_vec()).unwrap(),
            Some(b"1".to_vec()),
            "{name}"
        );
        assert_eq!(
            s.get(Tree::Clients, b"a").unwrap(),
            Some(b"2".to_vec()),
            "{name}"
        );
        assert_eq!(s.get(Tree::Meta, b"a").unwrap(), None, "{name}");
        assert_eq!(s.len(Tree::Clients).unwrap(), 1, "{name}");
        assert_eq!(
            s.remove(Tree::Clients, b"a").unwrap(),
            Some(b"2".to_vec()),
            "{name}"
        );
        assert_eq!(s.get(Tree::Clients, b"a").unwrap(), None, "{name}");
        assert_eq!(s.len(Tree::Clients).unwrap(), 0, "{name}");
    }
}

#[test]
fn prefix_scan_pages_in_key_order_and_stays_inside_the_prefix() {
    for (name, s) in engines() {
        for k in ["a/1", "a/2", "a/3", "b/1", "a\u{7f}"] {
            s.insert(Tree::Clients, k.as_bytes(), k.as_bytes().to_vec())
                .unwrap();
        }
        let keys = |v: Vec<Entry>| {
            v.into_iter()
                .map(|(k, _)| String::from_utf8(k).unwrap())
                .collect::<Vec<_>>()
        };
        let first = s.scan_prefix(Tree::Clients, b"a/", None, 2).unwrap();
        assert_eq!(keys(first.clone()), ["a/1", "a/2"], "{name}");
        let next = s
            .scan_prefix(Tree::Clients, b"a/", Some(&first[1].0), 2)
            .unwrap();
        assert_eq!(keys(next), ["a/3"], "{name}");
        assert_eq!(
            keys(s.scan_prefix(Tree::Clients, b"", None, 10).unwrap()).len(),
            5,
            "{name}"
        );
    }
}

#[test]
fn a_batch_writes_across_trees_all_together() {
    for (name, s) in engines() {
        s.insert(Tree::Clients, b"old", b"x".to_vec()).unwrap();
        let mut batch = Batch::new();
        batch
            .insert(Tree::Clients, b"new".to_vec(), b"1".to_vec())
            .remove(Tree::Clients, b"old".to_vec())
            .insert(Tree::Meta, b"m".to_vec(), b"2".to_vec());
        s.apply(batch).unwrap();
        assert_eq!(s.get(Tree::Clients, b"old").unwrap(), None, "{name}");
        assert_eq!(
            s.get(Tree::Clients, b"new").unwrap(),
            Some(b"1".to_vec()),
            "{name}"
        );
        assert_eq!(
            s.get(Tree::Meta, b"m").unwrap(),
            Some(b"2".to_vec()),
            "{name}"
        );
    }
}

#[test]
fn a_swap_writes_only_over_the_value_it_expects() {
    for (name, s) in engines() {
        s.insert(Tree::Codes, b"c", b"live".to_vec()).unwrap();
        // Atomic batch: a failed swap leaves every other write unmade.
        let mut batch = Batch::new();
        batch
            .insert(Tree::Tokens, b"t".to_vec(), b"1".to_vec())
            .swap(
                Tree::Codes,
                b"c".to_vec(),
                Some(b"other".to_vec()),
                Some(b"used".to_vec()),
            );
        let err = s.apply(batch).unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict { tree: "codes" }),
            "{name}: {err}"
        );
        assert_eq!(s.get(Tree::Tokens, b"t").unwrap(), None, "{name}");
        assert_eq!(
            s.get(Tree::Codes, b"c").unwrap(),
            Some(b"live".to_vec()),
            "{name}"
        );

        // In order: the writes after the swap are not made (those before
        // may be: an engine may also apply the whole batch atomically).
        let mut batch = Batch::new();
        batch
            .insert(Tree::Tokens, b"t".to_vec(), b"1".to_vec())
            .swap(Tree::Codes, b"c".to_vec(), Some(b"other".to_vec()), None)
            .insert(Tree::Tokens, b"after".to_vec(), b"2".to_vec());
        assert!(
            matches!(s.apply_in_order(batch), Err(StoreError::Conflict { .. })),
            "{name}"
        );
        assert_eq!(s.get(Tree::Tokens, b"after").unwrap(), None, "{name}");
        assert_eq!(
            s.get(Tree::Codes, b"c").unwrap(),
            Some(b"live".to_vec()),
            "{name}"
        );

        // The expected value: written (both ways), removed, created if absent.
        for in_order in [false, true] {
            let (from, to) = if in_order {
                (b"used", b"live")
            } else {
                (b"live", b"used")
            };
            let mut batch = Batch::new();
            batch.swap(
                Tree::Codes,
                b"c".to_vec(),
                Some(from.to_vec()),
                Some(to.to_vec()),
            );
            if in_order {
                s.apply_in_order(batch).unwrap();
            } else {
                s.apply(batch).unwrap();
            }
            assert_eq!(
                s.get(Tree::Codes, b"c").unwrap(),
                Some(to.to_vec()),
                "{name}"
            );
        }
        let mut batch = Batch::new();
        batch
            .swap(Tree::Codes, b"c".to_vec(), Some(b"live".to_vec()), None)
            .swap(Tree::Codes, b"n".to_vec(), None, Some(b"new".to_vec()));
        s.apply(batch).unwrap();
        assert_eq!(s.get(Tree::Codes, b"c").unwrap(), None, "{name}");
        assert_eq!(
            s.get(Tree::Codes, b"n").unwrap(),
            Some(b"new".to_vec()),
            "{name}"
        );
        let mut batch = Batch::new();
        batch.swap(Tree::Codes, b"n".to_vec(), None, Some(b"again".to_vec()));
        assert!(s.apply(batch).is_err(), "{name}: created twice");
    }
}

#[test]
fn of_concurrent_swaps_from_one_value_exactly_one_wins() {
    for (name, s) in engines() {
        let s: std::sync::Arc<dyn Store> = s.into();
        for in_order in [false, true] {
            s.insert(Tree::Tokens, b"r", b"live".to_vec()).unwrap();
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
            let wins: usize = (0..8u8)
                .map(|i| {
                    let (s, barrier) = (s.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        let mut batch = Batch::new();
                        batch.insert(Tree::Grants, vec![i], vec![i]).swap(
                            Tree::Tokens,
                            b"r".to_vec(),
                            Some(b"live".to_vec()),
                            Some(vec![i]),
                        );
                        barrier.wait();
                        let r = if in_order {
                            s.apply_in_order(batch)
                        } else {
                            s.apply(batch)
                        };
                        match r {
                            Ok(()) => 1,
                            Err(StoreError::Conflict { .. }) => 0,
                            Err(e) => panic!("{e}"),
                        }
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| t.join().unwrap())
                .sum();
            assert_eq!(wins, 1, "{name}, in order: {in_order}");
        }
    }
}

#[test]
fn sled_keeps_flushed_writes_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = SledStore::open(dir.path()).unwrap();
        s.insert(Tree::Clients, b"k", b"v".to_vec()).unwrap();
        s.flush().unwrap();
    }
    let s = SledStore::open(dir.path()).unwrap();
    assert_eq!(s.get(Tree::Clients, b"k").unwrap(), Some(b"v".to_vec()));
    assert!(s.is_persistent());
}

#[test]
fn prefix_end_handles_all_ff() {
    assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
    assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
    assert_eq!(prefix_end(&[0xff, 0xff]), None);
}

#[test]
fn codec_refuses_garbage_instead_of_panicking() {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct R {
        a: String,
        b: u64,
    }
    let bytes = codec::encode(&R {
        a: "x".into(),
        b: 7,
    })
    .unwrap();
    assert_eq!(
        codec::decode::<R>(Tree::Clients, &bytes).unwrap(),
        R {
            a: "x".into(),
            b: 7
        }
    );
    for bad in [
        &[][..],
        &[9, 1, 2][..],
        &bytes[..bytes.len() - 1],
        &[1, 0xff, 0xff, 0xff, 0xff, 0xff][..],
    ] {
        assert!(codec::decode::<R>(Tree::Clients, bad).is_err());
    }
}

/// A persistent-looking store whose flushes are counted, slowed and can fail.
#[derive(Default)]
struct Flaky {
    inner: MemoryStore,
    flushes: std::sync::atomic::AtomicUsize,
    fail: std::sync::atomic::AtomicBool,
    recovered: std::sync::atomic::AtomicUsize,
}

impl Store for Flaky {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(tree, key)
    }
    fn insert(&self, t: Tree, k: &[u8], v: Vec<u8>) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.insert(t, k, v)
    }
    fn remove(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.remove(tree, key)
    }
    fn scan_prefix(
        &self,
        t: Tree,
        p: &[u8],
        a: Option<&[u8]>,
        l: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        self.inner.scan_prefix(t, p, a, l)
    }
    fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        self.inner.apply(batch)
    }
    fn apply_in_order(&self, batch: Batch) -> Result<(), StoreError> {
        self.inner.apply_in_order(batch)
    }
    fn len(&self, tree: Tree) -> Result<usize, StoreError> {
        self.inner.len(tree)
    }
    fn flush(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        std::thread::sleep(std::time::Duration::from_millis(20));
        self.flushes.fetch_add(1, SeqCst);
        if self.fail.load(SeqCst) {
            return Err(StoreError::Engine("No space left on device".into()));
        }
        Ok(())
    }
    fn recover(&self) -> Result<(), StoreError> {
        self.recovered
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
    fn is_persistent(&self) -> bool {
        true
    }
    fn size_on_disk(&self) -> u64 {
        0
    }
}

#[actix_web::test]
async fn group_commit_shares_one_flush_among_concurrent_writers_and_reports_failures() {
    use std::sync::atomic::Ordering::SeqCst;
    let flaky = std::sync::Arc::new(Flaky::default());
    let commit = GroupCommit::new(flaky.clone());
    // Nothing written: no flush at all.
    commit.barrier().await.unwrap();
    assert_eq!(flaky.flushes.load(SeqCst), 0);

    // 64 writers each write then wait: far fewer flushes than writers.
    let waits = (0..64u32).map(|i| {
        let commit = commit.clone();
        async move {
            commit
                .insert(Tree::Clients, &i.to_be_bytes(), vec![1])
                .unwrap();
            commit.barrier().await
        }
    });
    let results = futures_util::future::join_all(waits).await;
    assert!(results.iter().all(Result::is_ok));
    let flushes = flaky.flushes.load(SeqCst);
    assert!(
        (1..=3).contains(&flushes),
        "64 concurrent writers needed {flushes} flushes"
    );

    // A failing disk: the waiter hears about it; later writes retry and
    // succeed once the disk works again.
    flaky.fail.store(true, SeqCst);
    commit.insert(Tree::Clients, b"x", vec![1]).unwrap();
    assert!(commit.barrier().await.is_err());
    flaky.fail.store(false, SeqCst);
    commit.insert(Tree::Clients, b"y", vec![1]).unwrap();
    commit.barrier().await.unwrap();
    assert_eq!(flaky.recovered.load(SeqCst), 1, "recovery tried once");
    assert_eq!(commit.get(Tree::Clients, b"y").unwrap(), Some(vec![1]));
}

#[test]
fn a_damaged_length_prefix_is_a_corrupt_record_not_an_abort() {
    // Found by `tests/fuzz` (vault_open): a user record whose first string
    // claims to be 1 TiB long. Decoding it tried to allocate that much, and
    // a failed allocation aborts the whole server.
    let record = [
        0x01, 0xfd, 0x00, 0xfe, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x80, 0x8a, 0x8a, 0x8a, 0x8a,
        0x2e, 0x00, 0x00, 0x20, 0x00,
    ];
    let err =
        codec::decode::<crate::actors::vault::UserCredentials>(Tree::Users, &record).unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { tree: "users", .. }),
        "{err}"
    );
    let huge_string = [0x01, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0x01, b'x'];
    assert!(codec::decode::<String>(Tree::Clients, &huge_string).is_err());
}
