//! Several instances on one database: brokers over one shared store, each
//! on its own thread, as several processes on one PostgreSQL are. Within a
//! process the actor serialises; across processes only the store's
//! conditional writes keep codes, rotations and sign-ins once-only.

use std::sync::Barrier;

use super::*;
use crate::storage::testing::{shared_stores, SlowReads};

const INSTANCES: usize = 3;

fn shared() -> (SharedStore, SuccessorKey) {
    (Arc::new(SlowReads::default()), SuccessorKey::new([9; 32]))
}

/// Runs `each(instance index, broker)` on every instance at once.
fn on_every_instance<R: Send + 'static>(
    store: &SharedStore,
    key: &SuccessorKey,
    each: impl Fn(usize, &mut Broker) -> R + Send + Sync + 'static,
) -> Vec<R> {
    let each = Arc::new(each);
    let start = Arc::new(Barrier::new(INSTANCES));
    (0..INSTANCES)
        .map(|i| {
            let (store, key, each, start) =
                (store.clone(), key.clone(), each.clone(), start.clone());
            std::thread::spawn(move || {
                let mut b = broker_on(store, key);
                start.wait();
                each(i, &mut b)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect()
}

#[test]
fn a_duplicate_refresh_on_another_instance_or_after_a_restart_gets_the_same_pair() {
    let (store, key) = shared();
    let mut a = broker_on(store.clone(), key.clone());
    let first = a.signed_in(T0);
    let second = a.refresh(&first, T0 + 100).unwrap();
    // Another instance (or this one restarted): nothing in memory.
    let mut b = broker_on(store.clone(), key.clone());
    let again = b.refresh(&first, T0 + 100 + POLICY.refresh_grace).unwrap();
    assert_eq!(again.access_token, second.access_token);
    assert_eq!(refresh_token(&again), refresh_token(&second));
    assert_eq!(again.grant_id, second.grant_id);
    // After the window it is a reuse there too: the family goes.
    let reuse = b.refresh(&first, T0 + 100 + POLICY.refresh_grace + 1);
    assert!(matches!(reuse, Err(BrokerError::Reuse(_))));
    assert!(!a.active(refresh_token(&second), T0 + 200));
}

#[test]
fn a_successor_sealed_under_another_key_file_is_not_handed_out() {
    let (store, key) = shared();
    let mut a = broker_on(store.clone(), key);
    let first = a.signed_in(T0);
    let second = a.refresh(&first, T0 + 100).unwrap();
    let mut stranger = broker_on(store, SuccessorKey::new([1; 32]));
    let r = stranger.refresh(&first, T0 + 101);
    assert!(matches!(r, Err(BrokerError::Reuse(_))), "{r:?}");
    assert!(!a.active(&second.access_token, T0 + 101));
}

#[test]
fn thirty_concurrent_refreshes_on_three_instances_rotate_once_and_all_get_the_same_pair() {
    for (engine, store) in shared_stores() {
        let key = SuccessorKey::new([9; 32]);
        let first = broker_on(store.clone(), key.clone()).signed_in(T0);
        let tokens_before = store.len(Tree::Tokens).unwrap();
        let pairs = on_every_instance(&store, &key, move |_, b| {
            (0..10)
                .map(|_| b.refresh(&first, T0 + 100).unwrap())
                .collect::<Vec<_>>()
        });
        let pairs: Vec<TokenPair> = pairs.into_iter().flatten().collect();
        assert_eq!(pairs.len(), 30);
        for p in &pairs {
            assert_eq!(p.access_token, pairs[0].access_token, "{engine}");
            assert_eq!(refresh_token(p), refresh_token(&pairs[0]), "{engine}");
        }
        // One rotation: one new access and one new refresh token, nothing else.
        assert_eq!(
            store.len(Tree::Tokens).unwrap(),
            tokens_before + 2,
            "{engine}"
        );
        let b = broker_on(store, key);
        assert!(b.active(refresh_token(&pairs[0]), T0 + 100), "{engine}");
    }
}

#[test]
fn one_code_redeemed_on_three_instances_at_once_succeeds_exactly_once() {
    for (engine, store) in shared_stores() {
        let key = SuccessorKey::new([9; 32]);
        for round in 0..5 {
            let (code, verifier) = broker_on(store.clone(), key.clone()).code(T0);
            let results =
                on_every_instance(&store, &key, move |_, b| b.redeem(&code, &verifier, T0));
            let wins = results.iter().filter(|r| r.is_ok()).count();
            assert_eq!(wins, 1, "{engine}, round {round}: {results:?}");
            for r in results.iter().filter(|r| r.is_err()) {
                assert!(
                    matches!(
                        r,
                        Err(BrokerError::Reuse(_)) | Err(BrokerError::InvalidGrant(_))
                    ),
                    "{engine}: {r:?}"
                );
            }
        }
    }
}

#[test]
fn a_sign_in_is_approved_and_completed_once_across_instances() {
    for round in 0..5 {
        let (store, key) = shared();
        let mut first = broker_on(store.clone(), key.clone());
        let p = Arc::new(first.begin(T0));
        let pending = p.clone();
        let approved = on_every_instance(&store, &key, move |_, b| {
            b.decide(&pending, true, T0).is_ok()
        });
        assert_eq!(
            approved.iter().filter(|ok| **ok).count(),
            1,
            "round {round}"
        );
        let pending = p.clone();
        let completed = on_every_instance(&store, &key, move |_, b| {
            b.complete(&pending, Some(&pending.cookie), T0).is_ok()
        });
        assert_eq!(
            completed.iter().filter(|ok| **ok).count(),
            1,
            "round {round}"
        );
    }
}
