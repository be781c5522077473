//! Two or three instances over one shared store: what the dev provider
//! issues on one is known on every other, and a code is taken once.

use std::sync::{Arc, Barrier};

use super::*;
use crate::storage::testing::{shared_stores, SlowReads};
use crate::storage::SharedStore;

const T0: UnixTime = 1_700_000_000;

fn instance(store: &SharedStore, clock: &Clock) -> DevState {
    DevState::new(Owned::new(store.clone()), clock.clone())
}

fn request() -> DevCode {
    DevCode {
        redirect_uri: "http://127.0.0.1:8002/oauth/callback".into(),
        challenge: "challenge".into(),
        scope: "openid email".into(),
        nonce: Some("n".into()),
    }
}

fn two_instances() -> (DevState, DevState, Clock, SharedStore) {
    let store: SharedStore = Arc::new(SlowReads::default());
    let clock = Clock::manual(T0);
    (
        instance(&store, &clock),
        instance(&store, &clock),
        clock,
        store,
    )
}

#[test]
fn a_code_issued_by_one_instance_is_redeemed_once_at_another() {
    let (a, b, _, store) = two_instances();
    a.issue_code("dev_code_1", request()).unwrap();
    assert_eq!(b.take_code("dev_code_1").unwrap(), Some(request()));
    assert_eq!(a.take_code("dev_code_1").unwrap(), None, "used on b");
    assert_eq!(b.take_code("dev_code_1").unwrap(), None, "used");
    assert_eq!(store.len(Tree::DevProvider).unwrap(), 0, "nothing left");
}

#[test]
fn one_code_redeemed_on_three_instances_at_once_is_taken_exactly_once() {
    for (engine, store) in shared_stores() {
        let clock = Clock::manual(T0);
        for round in 0..5 {
            let code = format!("dev_code_{round}");
            instance(&store, &clock)
                .issue_code(&code, request())
                .unwrap();
            let start = Arc::new(Barrier::new(3));
            let taken: Vec<Option<DevCode>> = (0..3)
                .map(|_| {
                    let (dev, start, code) =
                        (instance(&store, &clock), start.clone(), code.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        dev.take_code(&code).unwrap()
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect();
            let wins = taken.iter().flatten().count();
            assert_eq!(wins, 1, "{engine}, round {round}: {taken:?}");
        }
    }
}

#[test]
fn an_expired_code_is_refused_and_removed() {
    let (a, b, clock, store) = two_instances();
    a.issue_code("dev_code_old", request()).unwrap();
    clock.advance(CODE_TTL);
    assert_eq!(b.take_code("dev_code_old").unwrap(), None);
    assert_eq!(store.len(Tree::DevProvider).unwrap(), 0);
}

#[test]
fn tokens_issued_by_one_instance_are_live_at_another_until_revoked_or_expired() {
    let (a, b, clock, _) = two_instances();
    a.issue_access("dev_at_1").unwrap();
    a.issue_refresh("dev_rt_1", "openid email").unwrap();
    assert!(b.access_is_live("dev_at_1").unwrap());
    assert_eq!(
        b.refresh_scope("dev_rt_1").unwrap().as_deref(),
        Some("openid email")
    );
    assert!(
        !b.access_is_live("dev_rt_1").unwrap(),
        "a refresh token is no access token"
    );
    assert_eq!(
        b.refresh_scope("dev_at_1").unwrap(),
        None,
        "nor the other way round"
    );
    b.revoke("dev_rt_1").unwrap();
    assert_eq!(a.refresh_scope("dev_rt_1").unwrap(), None, "revoked on b");
    clock.advance(ACCESS_TTL);
    assert!(!a.access_is_live("dev_at_1").unwrap(), "expired");
}

#[test]
fn expired_codes_and_tokens_that_nobody_reads_again_are_swept() {
    let (a, b, clock, store) = two_instances();
    a.issue_code("dev_code_never_used", request()).unwrap();
    a.issue_access("dev_at_old").unwrap();
    a.issue_refresh("dev_rt_kept", "openid").unwrap();
    assert_eq!(store.len(Tree::DevProvider).unwrap(), 3);
    clock.advance(ACCESS_TTL);
    // b's first write sweeps: the code and the access token expired.
    b.issue_access("dev_at_new").unwrap();
    assert_eq!(store.len(Tree::DevProvider).unwrap(), 2);
    assert_eq!(
        a.refresh_scope("dev_rt_kept").unwrap().as_deref(),
        Some("openid")
    );
    assert!(a.access_is_live("dev_at_new").unwrap());
    // An hour on, the next write sweeps again: dev_at_new went.
    clock.advance(ACCESS_TTL);
    b.issue_code("dev_code_2", request()).unwrap();
    assert_eq!(store.len(Tree::DevProvider).unwrap(), 2);
    assert!(!a.access_is_live("dev_at_new").unwrap());
    assert_eq!(b.sweep(clock.now()).unwrap(), 0, "nothing else expired");
}
