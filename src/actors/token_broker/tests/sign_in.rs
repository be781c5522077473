//! The sign-in transaction: consent, browser binding, expiry.

use super::*;

#[test]
fn a_consent_with_a_wrong_csrf_token_is_refused_and_the_sign_in_stays_pending() {
    let mut b = broker();
    let p = b.begin(T0);
    let forged = b.core.decide(DecideConsent {
        state: p.begun.state.clone(),
        csrf: SecretToken::generate(""),
        approve: true,
        browser: p.cookie.hash(),
        now: T0,
    });
    assert!(matches!(forged, Err(BrokerError::Csrf)));
    assert!(b.decide(&p, true, T0).is_ok());
}

#[test]
fn a_consent_can_be_submitted_only_once() {
    let mut b = broker();
    let p = b.begin(T0);
    b.decide(&p, true, T0).unwrap();
    assert!(matches!(b.decide(&p, true, T0), Err(BrokerError::Csrf)));
    assert!(matches!(b.decide(&p, false, T0), Err(BrokerError::Csrf)));
}

#[test]
fn a_denied_consent_ends_the_sign_in() {
    let mut b = broker();
    let p = b.begin(T0);
    b.decide(&p, false, T0).unwrap();
    assert_eq!(b.count(Tree::Transactions), 0);
    assert!(matches!(
        b.complete(&p, Some(&p.cookie), T0),
        Err(BrokerError::UnknownTransaction)
    ));
}

#[test]
fn an_approved_sign_in_completes_once_from_the_approving_browser() {
    let mut b = broker();
    let p = b.begin(T0);
    b.decide(&p, true, T0).unwrap();
    let txn = b.complete(&p, Some(&p.cookie), T0 + 1).unwrap();
    assert_eq!(txn.client_id, CLIENT);
    assert_eq!(txn.redirect_uri, REDIRECT);
    assert_eq!(txn.client_state, "xyz");
    assert!(matches!(
        b.complete(&p, Some(&p.cookie), T0 + 2),
        Err(BrokerError::UnknownTransaction)
    ));
}

#[test]
fn a_callback_from_another_browser_is_refused_and_ends_the_sign_in() {
    let mut b = broker();
    let p = b.begin(T0);
    b.decide(&p, true, T0).unwrap();
    let stranger = SecretToken::generate("");
    assert!(matches!(
        b.complete(&p, Some(&stranger), T0),
        Err(BrokerError::WrongBrowser(_))
    ));
    // The approving browser is too late now: the link is dead.
    assert!(matches!(
        b.complete(&p, Some(&p.cookie), T0),
        Err(BrokerError::UnknownTransaction)
    ));
}

#[test]
fn a_callback_without_the_browser_cookie_is_refused() {
    let mut b = broker();
    let p = b.begin(T0);
    b.decide(&p, true, T0).unwrap();
    assert!(matches!(
        b.complete(&p, None, T0),
        Err(BrokerError::WrongBrowser(_))
    ));
}

#[test]
fn a_sign_in_that_was_not_approved_cannot_be_completed() {
    let mut b = broker();
    let p = b.begin(T0);
    assert!(matches!(
        b.complete(&p, Some(&p.cookie), T0),
        Err(BrokerError::UnknownTransaction)
    ));
    // Still pending: consent can follow.
    assert!(b.decide(&p, true, T0).is_ok());
}

#[test]
fn a_sign_in_expires_after_the_transaction_lifetime() {
    let mut b = broker();
    let p = b.begin(T0);
    let late = T0 + POLICY.transaction_ttl;
    assert!(matches!(
        b.decide(&p, true, late),
        Err(BrokerError::UnknownTransaction)
    ));
    let q = b.begin(T0);
    b.decide(&q, true, T0).unwrap();
    assert!(matches!(
        b.complete(&q, Some(&q.cookie), late),
        Err(BrokerError::UnknownTransaction)
    ));
}

#[test]
fn an_unknown_state_is_refused_at_consent() {
    let mut b = broker();
    let p = b.begin(T0);
    let r = b.core.decide(DecideConsent {
        state: SecretToken::generate(""),
        csrf: p.begun.csrf.clone(),
        approve: true,
        browser: p.cookie.hash(),
        now: T0,
    });
    assert!(matches!(r, Err(BrokerError::UnknownTransaction)));
}
