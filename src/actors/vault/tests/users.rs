//! Users and secrets: lookups, deletion, sealing at rest, altered records.

use super::*;

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
