//! Revocation of tokens, grants and clients.

use super::*;
use crate::domain::ClientId;

#[test]
fn revoking_an_access_token_leaves_the_refresh_token_usable() {
    let mut b = broker();
    let pair = b.signed_in(T0);
    let revoked = b
        .core
        .revoke(RevokeToken {
            token: pair.access_token.clone(),
            client_id: Some(ClientId::stored(CLIENT)),
            now: T0 + 1,
        })
        .unwrap();
    assert!(revoked.is_some());
    assert!(!b.active(&pair.access_token, T0 + 1));
    assert!(b.refresh(&pair, T0 + 2).is_ok());
}

#[test]
fn revoking_a_refresh_token_revokes_every_token_of_the_sign_in() {
    let mut b = broker();
    let first = b.signed_in(T0);
    let second = b.refresh(&first, T0 + 1).unwrap();
    b.core
        .revoke(RevokeToken {
            token: refresh_token(&second).clone(),
            client_id: Some(ClientId::stored(CLIENT)),
            now: T0 + 2,
        })
        .unwrap();
    assert!(!b.active(&first.access_token, T0 + 2));
    assert!(!b.active(&second.access_token, T0 + 2));
    assert!(is_invalid_grant(&b.refresh(&second, T0 + 3)));
    assert_eq!(b.count(Tree::Grants), 0);
    assert_eq!(b.count(Tree::GrantTokens), 0);
}

#[test]
fn a_client_cannot_revoke_another_clients_token() {
    let mut b = broker();
    let pair = b.signed_in(T0);
    let r = b
        .core
        .revoke(RevokeToken {
            token: refresh_token(&pair).clone(),
            client_id: Some(ClientId::stored(OTHER)),
            now: T0 + 1,
        })
        .unwrap();
    assert!(r.is_none());
    assert!(b.active(&pair.access_token, T0 + 1));
    assert!(b.refresh(&pair, T0 + 2).is_ok());
}

#[test]
fn revoking_an_unknown_token_answers_nothing_and_changes_nothing() {
    let mut b = broker();
    let pair = b.signed_in(T0);
    let r = b
        .core
        .revoke(RevokeToken {
            token: SecretToken::generate(ACCESS_PREFIX),
            client_id: None,
            now: T0 + 1,
        })
        .unwrap();
    assert!(r.is_none());
    assert!(b.active(&pair.access_token, T0 + 1));
}

#[test]
fn revoking_a_grant_ends_its_sign_in_only() {
    let mut b = broker();
    let one = b.signed_in(T0);
    let two = b.signed_in(T0);
    let removed = b.core.revoke_grant_tokens(&one.grant_id).unwrap();
    assert_eq!(removed, 2);
    assert!(!b.active(&one.access_token, T0 + 1));
    assert!(b.active(&two.access_token, T0 + 1));
}

#[test]
fn revoking_a_client_ends_all_its_sign_ins_and_no_other_clients() {
    let mut b = broker();
    let one = b.signed_in(T0);
    let two = b.signed_in(T0);
    // A sign-in of another client, on the same store.
    let (code, verifier) = b.code(T0);
    let mut record: CodeRecord = crate::storage::codec::decode(
        Tree::Codes,
        &b.store
            .get(Tree::Codes, code.hash().as_bytes())
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    record.client_id = ClientId::stored(OTHER);
    let mut batch = crate::storage::Batch::new();
    batch.insert(
        Tree::Codes,
        code.hash().as_bytes().to_vec(),
        crate::storage::codec::encode(&record).unwrap(),
    );
    b.store.apply(batch).unwrap();
    let other = b
        .redeem_as(&code, OTHER, REDIRECT, Some(&verifier), T0)
        .unwrap()
        .pair
        .unwrap();
    assert_eq!(
        b.core
            .client_counts(ClientTokenCounts {
                client_id: ClientId::stored(CLIENT)
            })
            .unwrap(),
        (2, 4)
    );
    let revoked = b
        .core
        .revoke_client(RevokeClientGrants {
            client_ids: vec![ClientId::stored(CLIENT)],
        })
        .unwrap();
    assert_eq!(revoked, 2);
    assert!(!b.active(&one.access_token, T0 + 1));
    assert!(!b.active(refresh_token(&two), T0 + 1));
    assert!(b.active(&other.access_token, T0 + 1));
    assert_eq!(
        b.core
            .client_counts(ClientTokenCounts {
                client_id: ClientId::stored(CLIENT)
            })
            .unwrap(),
        (0, 0)
    );
}
