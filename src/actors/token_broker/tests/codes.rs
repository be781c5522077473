//! Authorization codes: single use, PKCE, redirect URI, client, lifetime.

use super::*;

#[test]
fn a_code_redeems_once_for_tokens_that_introspect_as_active() {
    let mut b = broker();
    let pair = b.signed_in(T0);
    assert!(b.active(&pair.access_token, T0));
    assert!(b.active(refresh_token(&pair), T0));
    assert_eq!(pair.scope, "openid email");
    assert_eq!(pair.expires_in, POLICY.access_ttl);
    let record = b
        .reader
        .read(IntrospectToken {
            token: pair.access_token.clone(),
            now: T0,
        })
        .unwrap()
        .unwrap();
    assert_eq!(record.kind, TokenKind::Access);
    assert_eq!(record.client_id, CLIENT);
    assert_eq!(record.user, "u_alice");
}

#[test]
fn a_code_redeemed_twice_is_refused_and_the_tokens_of_its_first_redemption_are_revoked() {
    let mut b = broker();
    let (code, verifier) = b.code(T0);
    let pair = b.redeem(&code, &verifier, T0).unwrap();
    let again = b.redeem(&code, &verifier, T0 + 1);
    assert!(matches!(again, Err(BrokerError::Reuse(_))));
    assert!(!b.active(&pair.access_token, T0 + 1));
    assert!(!b.active(refresh_token(&pair), T0 + 1));
    assert!(is_invalid_grant(&b.refresh(&pair, T0 + 2)));
}

#[test]
fn a_code_is_refused_with_a_wrong_or_missing_pkce_verifier_and_still_redeems_with_the_right_one() {
    let mut b = broker();
    let (code, verifier) = b.code(T0);
    let wrong = new_verifier();
    assert!(is_invalid_grant(&b.redeem(&code, &wrong, T0)));
    assert!(is_invalid_grant(
        &b.redeem_as(&code, CLIENT, REDIRECT, None, T0)
    ));
    // The S256 challenge itself is not a verifier.
    let challenge = challenge_of(&verifier);
    assert!(is_invalid_grant(&b.redeem(&code, &challenge, T0)));
    assert!(b.redeem(&code, &verifier, T0).is_ok());
}

#[test]
fn a_code_is_refused_unless_the_redirect_uri_is_exactly_the_authorized_one() {
    let mut b = broker();
    let (code, verifier) = b.code(T0);
    for near in [
        "https://app.example/cb/",
        "https://APP.example/cb",
        "https://app.example/cb?x=1",
        "http://app.example/cb",
    ] {
        let r = b.redeem_as(&code, CLIENT, near, Some(&verifier), T0);
        assert!(is_invalid_grant(&r), "{near} was accepted");
    }
    assert!(b.redeem(&code, &verifier, T0).is_ok());
}

#[test]
fn a_code_is_refused_to_another_client_and_stays_usable_by_its_own() {
    let mut b = broker();
    let (code, verifier) = b.code(T0);
    let r = b.redeem_as(&code, OTHER, REDIRECT, Some(&verifier), T0);
    assert!(is_invalid_grant(&r));
    assert!(b.redeem(&code, &verifier, T0).is_ok());
}

#[test]
fn a_code_is_refused_once_its_lifetime_has_passed() {
    let mut b = broker();
    let (code, verifier) = b.code(T0);
    assert!(is_invalid_grant(&b.redeem(
        &code,
        &verifier,
        T0 + POLICY.code_ttl
    )));
    assert_eq!(b.count(Tree::Grants), 0);
}

#[test]
fn an_unknown_code_is_refused() {
    let mut b = broker();
    let made_up = SecretToken::generate("mcp_code_");
    assert!(is_invalid_grant(&b.redeem(&made_up, &new_verifier(), T0)));
}
