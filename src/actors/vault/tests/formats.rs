//! Records of the previous release's format.

use super::*;

/// Writes a user record as the previous release did: format 1, keyed by
/// the subject alone, indexed under the bare email key.
fn store_format_1(v: &TestVault, uid: &str, sub: &str, email: &str, id_token: Option<String>) {
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
