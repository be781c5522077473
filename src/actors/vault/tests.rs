//! The Vault's behaviour over real storage: sealing at rest, lookups,
//! unreadable records, rotation (whole and interrupted), snapshots.

use std::path::Path;
use std::sync::Arc;

use super::cipher::{sealed_key_id, Codec, Keyring};
use super::keyfile::{self, KeySource};
use super::*;
use crate::storage::{MemoryStore, SharedStore, SledStore, Tree};

fn creds(sub: &str, email: &str, token: &str) -> UserCredentials {
    UserCredentials {
        uid: String::new(),
        sub: sub.into(),
        email: Some(email.into()),
        tokens: UpstreamTokens {
            access_token: format!("ya29.{token}"),
            refresh_token: Some(format!("1//{token}")),
            expires_at: Some(1_800_000_000),
            scopes: vec!["openid".into()],
            id_token: None,
        },
        created_at: 1,
        updated_at: 2,
    }
}

fn sealed_core(dir: &Path) -> VaultCore {
    let key_path = dir.join("key");
    let ring = keyfile::load_or_create(&key_path, false, 0).unwrap();
    let store: SharedStore = Arc::new(SledStore::open(&dir.join("db")).unwrap());
    VaultCore::new(
        store,
        Codec::Sealed(ring),
        Some(KeySource::File(key_path)),
        true,
        None,
    )
}

#[test]
fn users_are_found_by_subject_and_by_email_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = sealed_core(dir.path());
    v.store_user(creds("111", "Ada@Example.com", "a")).unwrap();
    let by_sub = v.load_user(&UserRef::Sub("111".into())).unwrap().unwrap();
    assert_eq!(by_sub.tokens.access_token, "ya29.a");
    assert_eq!(
        v.load_user(&UserRef::Email("ada@example.com".into()))
            .unwrap(),
        Some(by_sub)
    );
    // A new email moves the index.
    v.store_user(creds("111", "ada@new.example", "b")).unwrap();
    assert_eq!(
        v.load_user(&UserRef::Email("ada@example.com".into()))
            .unwrap(),
        None
    );
    assert!(v
        .load_user(&UserRef::Email("ada@new.example".into()))
        .unwrap()
        .is_some());
    assert!(v
        .delete_user(&UserRef::Email("ada@new.example".into()))
        .unwrap());
    assert_eq!(v.load_user(&UserRef::Sub("111".into())).unwrap(), None);
    assert_eq!(v.store().len(Tree::UserEmails).unwrap(), 0);
}

#[test]
fn nothing_secret_or_identifying_is_in_the_encrypted_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let needles = [
        "ya29.KNOWN-ACCESS-TOKEN",
        "1//KNOWN-ACCESS-TOKEN",
        "grace@example.org",
        "108374629",
        "custom-upstream-secret",
    ];
    {
        let mut v = sealed_core(dir.path());
        v.store_user(creds(
            "108374629",
            "grace@example.org",
            "KNOWN-ACCESS-TOKEN",
        ))
        .unwrap();
        v.seal_secret("upstream_client", "mcp_x", b"custom-upstream-secret")
            .unwrap();
        v.store().flush().unwrap();
    }
    let mut files = 0;
    for entry in walk(&dir.path().join("db")) {
        let bytes = std::fs::read(&entry).unwrap();
        files += 1;
        for needle in needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{needle} found in {}",
                entry.display()
            );
        }
    }
    assert!(files > 0, "the data directory was written");
    // …and everything reads back after a reopen.
    let v = sealed_core(dir.path());
    assert_eq!(
        v.load_user(&UserRef::Email("grace@example.org".into()))
            .unwrap()
            .unwrap()
            .sub,
        "108374629"
    );
    assert_eq!(
        v.open_secret("upstream_client", "mcp_x").unwrap().unwrap(),
        b"custom-upstream-secret"
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn an_altered_record_is_reported_and_left_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = sealed_core(dir.path());
    v.store_user(creds("1", "a@x.org", "a")).unwrap();
    v.store_user(creds("2", "b@x.org", "b")).unwrap();
    let (key, mut value) = v
        .store()
        .scan_prefix(Tree::Users, b"", None, 1)
        .unwrap()
        .remove(0);
    let last = value.len() - 1;
    value[last] ^= 0x80;
    v.store().insert(Tree::Users, &key, value.clone()).unwrap();
    let page = v.list_users(None, 10).unwrap();
    assert_eq!(page.users.len(), 1);
    assert_eq!(
        page.unreadable,
        vec![String::from_utf8(key.clone()).unwrap()]
    );
    assert_eq!(
        v.store().get(Tree::Users, &key).unwrap(),
        Some(value),
        "left in place"
    );
}

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
        assert!(v
            .load_user(&UserRef::Email(format!("u{i}@x.org")))
            .unwrap()
            .is_some());
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
        assert!(v.load_user(&UserRef::Sub(i.to_string())).unwrap().is_some());
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
        store,
        Codec::Sealed(ring.clone()),
        None,
        false,
        Some(path.clone()),
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
    let v2 = VaultCore::new(restored.clone(), Codec::Sealed(ring), None, false, None);
    assert_eq!(
        v2.load_user(&UserRef::Sub("9".into()))
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
