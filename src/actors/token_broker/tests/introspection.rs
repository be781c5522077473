//! Introspection through the reader.

use super::*;

#[test]
fn introspection_answers_inactive_for_expired_rotated_revoked_and_unknown_tokens() {
    let mut b = broker();
    let first = b.signed_in(T0);
    assert!(b.active(&first.access_token, T0 + POLICY.access_ttl - 1));
    assert!(!b.active(&first.access_token, T0 + POLICY.access_ttl));
    let second = b.refresh(&first, T0 + 10).unwrap();
    assert!(
        !b.active(refresh_token(&first), T0 + 10),
        "a rotated refresh token is active"
    );
    assert!(!b.active(&SecretToken::generate(ACCESS_PREFIX), T0 + 10));
    b.core.revoke_grant_tokens(&second.grant_id).unwrap();
    assert!(!b.active(&second.access_token, T0 + 11));
}
