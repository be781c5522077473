//! The MEMORY_WITH_BACKUP snapshot.

use super::*;

#[test]
fn a_snapshot_restores_every_tree_and_only_under_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let ring = Keyring::generate(0);
    let path = dir.path().join("snap");
    let store: SharedStore = Arc::new(MemoryStore::new());
    store
        .insert(Tree::Clients, b"mcp_a", b"client".to_vec())
        .unwrap();
    let mut v = VaultCore::new(
        Owned::new(store.clone()),
        Codec::Sealed(ring.clone()),
        None,
        false,
        Some(Snapshot::new(path.clone(), ReadStore::new(store))),
    );
    v.store_user(creds("9", "n@x.org", "snap-token")).unwrap();
    assert_eq!(
        v.write_snapshot().unwrap(),
        4,
        "client, user, email index, id index"
    );
    let bytes = std::fs::read(&path).unwrap();
    assert!(!bytes.windows(10).any(|w| w == b"snap-token"));

    let restored: SharedStore = Arc::new(MemoryStore::new());
    assert_eq!(
        restore_snapshot(&path, &Codec::Sealed(ring.clone()), &restored).unwrap(),
        4
    );
    let v2 = TestVault::over(restored.clone(), Codec::Sealed(ring), None);
    assert_eq!(
        v2.load_user(&subject("9"))
            .unwrap()
            .unwrap()
            .tokens
            .access_token,
        "ya29.snap-token"
    );
    assert_eq!(
        restored.get(Tree::Clients, b"mcp_a").unwrap(),
        Some(b"client".to_vec())
    );

    let other: SharedStore = Arc::new(MemoryStore::new());
    assert!(restore_snapshot(&path, &Codec::Sealed(Keyring::generate(0)), &other).is_err());
    assert_eq!(other.len(Tree::Clients).unwrap(), 0);
}
