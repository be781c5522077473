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
