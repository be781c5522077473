//! The Vault's behaviour over real storage: sealing at rest, lookups,
//! unreadable records, rotation (whole and interrupted), snapshots.

use std::path::Path;
use std::sync::Arc;

use super::cipher::{sealed_key_id, Codec, Keyring};
use super::keyfile::{self, KeySource};
use super::*;
use crate::storage::{MemoryStore, SharedStore, SledStore, Tree};

const ISS: &str = "https://issuer.example";

fn creds(sub: &str, email: &str, token: &str) -> UserCredentials {
    UserCredentials {
        uid: String::new(),
        issuer: ISS.into(),
        sub: sub.into(),
        email: Some(email.into()),
        email_verified: true,
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

fn subject(sub: impl Into<String>) -> UserRef {
    UserRef::Subject {
        issuer: ISS.into(),
        sub: sub.into(),
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
    let by_sub = v.load_user(&subject("111")).unwrap().unwrap();
    assert_eq!(by_sub.tokens.access_token, "ya29.a");
    assert_eq!(v.users_by_email("ada@example.com").unwrap(), vec![by_sub]);
    // A new email moves the index.
    v.store_user(creds("111", "ada@new.example", "b")).unwrap();
    assert_eq!(v.users_by_email("ada@example.com").unwrap(), vec![]);
    let moved = v.users_by_email("ada@new.example").unwrap();
    assert_eq!(moved.len(), 1);
    assert!(v.delete_user(&UserRef::Id(moved[0].uid.clone())).unwrap());
    assert_eq!(v.load_user(&subject("111")).unwrap(), None);
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
        v.users_by_email("grace@example.org").unwrap()[0].sub,
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

/// Writes a user record as the previous release did: format 1, keyed by
/// the subject alone, indexed under the bare email key.
fn store_format_1(v: &VaultCore, uid: &str, sub: &str, email: &str, id_token: Option<String>) {
    let old = UserCredentialsV1 {
        uid: uid.into(),
        sub: sub.into(),
        email: Some(email.into()),
        tokens: UpstreamTokens {
            id_token,
            ..creds(sub, email, "old").tokens
        },
        created_at: 1,
        updated_at: 2,
    };
    let key = v.codec().identity_key("sub", sub).into_bytes();
    let sealed = v
        .codec()
        .wrap("user", &key, &crate::storage::codec::encode(&old).unwrap());
    let store = v.store();
    store.insert(Tree::Users, &key, sealed).unwrap();
    store
        .insert(Tree::UserIds, uid.as_bytes(), key.clone())
        .unwrap();
    let email_key = v.codec().identity_key("email", &email.to_lowercase());
    store
        .insert(Tree::UserEmails, email_key.as_bytes(), key)
        .unwrap();
}

fn jwt(claims: serde_json::Value) -> String {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    format!(
        "{}.{}.sig",
        b64(br#"{"alg":"RS256"}"#),
        b64(claims.to_string().as_bytes())
    )
}

#[test]
fn a_record_of_the_previous_format_is_read_and_moved_under_its_issuer_at_the_next_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = sealed_core(dir.path());
    let verified = jwt(
        serde_json::json!({"iss": ISS, "sub": "777", "email": "old@x.org", "email_verified": true}),
    );
    store_format_1(&v, "u_old", "777", "old@x.org", Some(verified));
    store_format_1(&v, "u_bare", "778", "bare@x.org", None);
    // Read as it was: the uid still resolves; issuer and verification come
    // from the stored ID token, or stay unknown/unverified without one.
    let old = v.load_user(&UserRef::Id("u_old".into())).unwrap().unwrap();
    assert_eq!((old.issuer.as_str(), old.email_verified), (ISS, true));
    let bare = v.load_user(&UserRef::Id("u_bare".into())).unwrap().unwrap();
    assert_eq!((bare.issuer.as_str(), bare.email_verified), ("", false));
    assert_eq!(v.users_by_email("old@x.org").unwrap().len(), 1);
    assert!(v.users_by_email("bare@x.org").unwrap().is_empty());
    assert!(v
        .load_user(&UserRef::Subject {
            issuer: String::new(),
            sub: "778".into()
        })
        .unwrap()
        .is_some());
    // The next sign-in (issuer and subject) takes the record over: same
    // uid, moved to the new key, old key and old index entry gone.
    let uid = v.store_user(creds("778", "bare@x.org", "new")).unwrap();
    assert_eq!(uid, "u_bare");
    assert!(v
        .load_user(&UserRef::Subject {
            issuer: String::new(),
            sub: "778".into()
        })
        .unwrap()
        .is_none());
    let moved = v.load_user(&subject("778")).unwrap().unwrap();
    assert_eq!(moved.tokens.access_token, "ya29.new");
    assert_eq!(
        v.load_user(&UserRef::Id("u_bare".into())).unwrap(),
        Some(moved.clone())
    );
    assert_eq!(v.users_by_email("bare@x.org").unwrap(), vec![moved]);
    assert_eq!(v.store().len(Tree::Users).unwrap(), 2);
    // A record whose stored token names another issuer is not taken over.
    let uid = v
        .store_user(UserCredentials {
            issuer: "https://other.example".into(),
            ..creds("777", "old@x.org", "other")
        })
        .unwrap();
    assert_ne!(uid, "u_old");
    assert_eq!(v.store().len(Tree::Users).unwrap(), 3);
}

#[test]
fn an_email_names_every_user_who_verified_it_and_never_one_who_did_not() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = sealed_core(dir.path());
    let a = v.store_user(creds("1", "V@x.org", "a")).unwrap();
    let b = v
        .store_user(UserCredentials {
            issuer: "https://second.example".into(),
            ..creds("2", "v@x.org", "b")
        })
        .unwrap();
    let attacker = v
        .store_user(UserCredentials {
            email_verified: false,
            ..creds("3", "v@x.org", "c")
        })
        .unwrap();
    let mut found: Vec<String> = v
        .users_by_email("v@X.org")
        .unwrap()
        .into_iter()
        .map(|u| u.uid)
        .collect();
    found.sort();
    let mut expected = vec![a.clone(), b];
    expected.sort();
    assert_eq!(found, expected);
    assert!(!found.contains(&attacker));
    // Verification withdrawn at the next sign-in: no longer named.
    v.store_user(UserCredentials {
        email_verified: false,
        ..creds("1", "v@x.org", "a2")
    })
    .unwrap();
    assert!(!v
        .users_by_email("v@x.org")
        .unwrap()
        .iter()
        .any(|u| u.uid == a));
}

#[test]
fn the_same_subject_at_two_issuers_is_two_users() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = sealed_core(dir.path());
    let one = v.store_user(creds("42", "a@x.org", "one")).unwrap();
    let two = v
        .store_user(UserCredentials {
            issuer: "https://second.example".into(),
            ..creds("42", "b@y.org", "two")
        })
        .unwrap();
    assert_ne!(one, two);
    assert_eq!(
        v.load_user(&subject("42"))
            .unwrap()
            .unwrap()
            .tokens
            .access_token,
        "ya29.one"
    );
}
