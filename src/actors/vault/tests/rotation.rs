//! Key rotation, whole and interrupted.

use super::*;

#[test]
fn rotation_reseals_every_record_and_retires_the_old_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = sealed_core(dir.path());
    let old = v.codec().keyring().unwrap().current_id().to_owned();
    for i in 0..5 {
        v.store_user(creds(
            &i.to_string(),
            &format!("u{i}@x.org"),
            &i.to_string(),
        ))
        .unwrap();
    }
    v.seal_secret("k", "id", b"s").unwrap();
    let report = v.rotate(10).unwrap();
    assert_eq!(report.resealed, 6);
    assert_eq!(report.retired_keys, vec![old.clone()]);
    assert_ne!(report.new_key_id, old);
    // Every record is under the new key and reads back.
    for (_, value) in v.store().scan_prefix(Tree::Users, b"", None, 100).unwrap() {
        assert_eq!(sealed_key_id(&value).unwrap(), report.new_key_id);
    }
    for i in 0..5 {
        assert_eq!(v.users_by_email(&format!("u{i}@x.org")).unwrap().len(), 1);
    }
    // The key file no longer holds the old key.
    let on_disk = keyfile::load(&dir.path().join("key"), false).unwrap();
    assert_eq!(on_disk.key_ids(), vec![report.new_key_id.as_str()]);
}

#[test]
fn an_interrupted_rotation_completes_when_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let old;
    {
        let mut v = sealed_core(dir.path());
        old = v.codec().keyring().unwrap().current_id().to_owned();
        for i in 0..4 {
            v.store_user(creds(&i.to_string(), &format!("u{i}@x.org"), "t"))
                .unwrap();
        }
        // Crash after the new key is saved and one record re-sealed.
        v.begin_rotation(5).unwrap();
        let mut partial = RotationReport::default();
        assert_eq!(v.reseal(1, &mut partial).unwrap(), 1);
        assert_eq!(v.records_on_old_keys().unwrap(), 3);
    }
    // A restart reads both keys from the file: everything is still readable…
    let mut v = sealed_core(dir.path());
    assert_eq!(v.codec().keyring().unwrap().key_ids().len(), 2);
    for i in 0..4 {
        assert!(v.load_user(&subject(i.to_string())).unwrap().is_some());
    }
    // …and running the rotation again finishes it, without a third key.
    let report = v.rotate(6).unwrap();
    assert_eq!(report.resealed, 3);
    assert_eq!(report.retired_keys, vec![old]);
    assert_eq!(v.records_on_old_keys().unwrap(), 0);
    assert_eq!(
        keyfile::load(&dir.path().join("key"), false)
            .unwrap()
            .key_ids()
            .len(),
        1
    );
}

/// Two instances on one database, sharing the key file: each a core of
/// its own over the same store.
fn two_instances(dir: &Path) -> (TestVault, TestVault) {
    let key_path = dir.join("key");
    let ring = keyfile::load_or_create(&key_path, false, 0).unwrap();
    let store: SharedStore = Arc::new(crate::storage::MemoryStore::new());
    let instance = |ring| TestVault {
        core: VaultCore::new(
            Owned::new(store.clone()),
            Codec::Sealed(ring),
            Some(KeySource::File(key_path.clone())),
            true,
            None,
        )
        .with_shared_keys(true),
        store: store.clone(),
    };
    (instance(ring.clone()), instance(ring))
}

#[test]
fn a_rotation_with_several_instances_reaches_the_others_by_the_key_file_and_retires_old_keys_on_its_second_run(
) {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, mut b) = two_instances(dir.path());
    let old = a.codec().keyring().unwrap().current_id().to_owned();
    a.store_user(creds("1", "one@x.org", "t1")).unwrap();
    // A rotates: everything re-sealed under the new key, the old one kept.
    let first = a.rotate(10).unwrap();
    assert_eq!(
        first.retired_keys,
        Vec::<String>::new(),
        "kept for the others"
    );
    assert!(first.resealed >= 1);
    // B, still on the old keyring, cannot open what A re-sealed, and seals
    // under the old key meanwhile.
    assert!(b.load_user(&subject("1")).is_err());
    b.store_user(creds("2", "two@x.org", "t2")).unwrap();
    // B reads the key file again (SIGHUP, or its periodic reload).
    assert_eq!(
        b.reload_keys(false).unwrap(),
        Some(first.new_key_id.clone())
    );
    assert_eq!(b.reload_keys(false).unwrap(), None, "nothing changed since");
    assert_eq!(
        b.load_user(&subject("1"))
            .unwrap()
            .unwrap()
            .email
            .as_deref(),
        Some("one@x.org")
    );
    // A's second run re-seals what B wrote under the old key and retires it.
    let second = a.rotate(20).unwrap();
    assert_eq!(second.new_key_id, first.new_key_id);
    assert_eq!(second.resealed, 1, "B's record");
    assert_eq!(second.retired_keys, vec![old]);
    assert_eq!(
        b.reload_keys(false).unwrap(),
        Some(first.new_key_id.clone())
    );
    for v in [&a, &b] {
        for sub in ["1", "2"] {
            assert!(v.load_user(&subject(sub)).unwrap().is_some(), "{sub}");
        }
    }
}
