//! Refresh-token rotation: the grace window, reuse, expiry, scopes.

use super::*;
use crate::domain::ClientId;

#[test]
fn a_refresh_hands_out_a_new_pair_and_the_old_tokens_stop_being_active() {
    let mut b = broker();
    let first = b.signed_in(T0);
    let second = b.refresh(&first, T0 + 100).unwrap();
    assert_ne!(second.access_token, first.access_token);
    assert_ne!(refresh_token(&second), refresh_token(&first));
    assert_eq!(second.grant_id, first.grant_id);
    assert!(!b.active(refresh_token(&first), T0 + 100));
    assert!(b.active(refresh_token(&second), T0 + 100));
    assert!(b.active(&second.access_token, T0 + 100));
    // The new refresh token is good for another full idle period.
    assert!(b
        .refresh(&second, T0 + 100 + POLICY.refresh_idle - 1)
        .is_ok());
}

#[test]
fn a_duplicate_refresh_inside_the_grace_window_gets_the_same_pair() {
    let mut b = broker();
    let first = b.signed_in(T0);
    let second = b.refresh(&first, T0 + 100).unwrap();
    let again = b.refresh(&first, T0 + 100 + POLICY.refresh_grace).unwrap();
    assert_eq!(again.access_token, second.access_token);
    assert_eq!(refresh_token(&again), refresh_token(&second));
    assert!(b.active(refresh_token(&second), T0 + 100 + POLICY.refresh_grace));
}

#[test]
fn a_refresh_token_reused_after_the_grace_window_revokes_every_token_of_the_sign_in() {
    let mut b = broker();
    let first = b.signed_in(T0);
    let second = b.refresh(&first, T0 + 100).unwrap();
    let reuse = b.refresh(&first, T0 + 100 + POLICY.refresh_grace + 1);
    assert!(matches!(reuse, Err(BrokerError::Reuse(_))));
    let later = T0 + 100 + POLICY.refresh_grace + 2;
    assert!(!b.active(&second.access_token, later));
    assert!(!b.active(refresh_token(&second), later));
    assert!(is_invalid_grant(&b.refresh(&second, later)));
    assert_eq!(b.count(Tree::Grants), 0);
    assert_eq!(b.count(Tree::Tokens), 0);
}

#[test]
fn a_refresh_token_left_unused_for_its_idle_lifetime_is_refused() {
    let mut b = broker();
    let pair = b.signed_in(T0);
    let r = b.refresh(&pair, T0 + POLICY.refresh_idle);
    assert!(is_invalid_grant(&r));
    assert!(!b.active(refresh_token(&pair), T0 + POLICY.refresh_idle));
}

#[test]
fn an_expired_refresh_token_is_refused_by_the_http_sides_check_as_by_the_rotation() {
    // The token endpoint peeks through the reader before it refreshes the
    // user's upstream token; both checks must refuse the same tokens.
    let mut b = broker();
    let pair = b.signed_in(T0);
    let late = T0 + POLICY.refresh_idle;
    let peek = b.reader.read(PeekRefresh {
        refresh_token: refresh_token(&pair).clone(),
        client_id: ClientId::stored(CLIENT),
        now: late,
    });
    let rotate = b.core.refresh(RefreshTokens {
        refresh_token: refresh_token(&pair).clone(),
        client_id: ClientId::stored(CLIENT),
        scopes: None,
        now: late,
    });
    assert!(
        is_invalid_grant(&peek),
        "the peek accepted an expired refresh token"
    );
    assert!(is_invalid_grant(&rotate));
}

#[test]
fn refreshing_never_extends_a_sign_in_past_its_maximum_lifetime() {
    let mut b = broker();
    let mut pair = b.signed_in(T0);
    let end = T0 + POLICY.grant_lifetime;
    let mut now = T0;
    // Refresh every six days: never idle for long, yet the sign-in ends.
    while now + 6 * 86400 < end {
        now += 6 * 86400;
        pair = b.refresh(&pair, now).unwrap();
    }
    let last = b.refresh(&pair, end - 10).unwrap();
    assert_eq!(last.expires_in, 10, "the access token outlives the sign-in");
    let after = b.refresh(&last, end);
    assert!(is_invalid_grant(&after));
    assert!(!b.active(&last.access_token, end));
}

#[test]
fn a_refresh_token_presented_by_another_client_is_refused_and_stays_usable() {
    let mut b = broker();
    let pair = b.signed_in(T0);
    let r = b.refresh_as(refresh_token(&pair), OTHER, None, T0 + 1);
    assert!(is_invalid_grant(&r));
    assert!(b.refresh(&pair, T0 + 2).is_ok());
}

#[test]
fn an_access_token_cannot_be_used_as_a_refresh_token() {
    let mut b = broker();
    let pair = b.signed_in(T0);
    let r = b.refresh_as(&pair.access_token, CLIENT, None, T0 + 1);
    assert!(is_invalid_grant(&r));
}

#[test]
fn a_refresh_may_narrow_the_scopes_but_never_widen_them() {
    let mut b = broker();
    let pair = b.signed_in(T0);
    let wider = vec!["openid".into(), "drive".into()];
    let r = b.refresh_as(refresh_token(&pair), CLIENT, Some(wider), T0 + 1);
    assert!(matches!(r, Err(BrokerError::InvalidScope)));
    let narrower = b
        .refresh_as(
            refresh_token(&pair),
            CLIENT,
            Some(vec!["openid".into()]),
            T0 + 2,
        )
        .unwrap();
    assert_eq!(narrower.scope, "openid");
}
