//! Several instances on one database: registries over one shared store,
//! each on its own thread. The cap, an operator's change and the purge
//! must hold across them, which only the store's conditional writes and
//! the shared count can make true.

use std::sync::Barrier;

use super::*;
use crate::storage::testing::{shared_stores, SlowReads};

const INSTANCES: usize = 3;

fn shared_core(store: &SharedStore, max: usize) -> RegistryCore {
    RegistryCore::new(Owned::new(store.clone()), POLICY, max, false).with_shared_count(true)
}

/// Runs `each(instance index, core)` on every instance at once.
fn on_every_instance<R: Send + 'static>(
    store: &SharedStore,
    max: usize,
    each: impl Fn(usize, &mut RegistryCore) -> R + Send + Sync + 'static,
) -> Vec<R> {
    on_every_guarded_instance(store, max, FloodGuard::default(), each)
}

/// [`on_every_instance`] with the flood guard on.
fn on_every_guarded_instance<R: Send + 'static>(
    store: &SharedStore,
    max: usize,
    guard: FloodGuard,
    each: impl Fn(usize, &mut RegistryCore) -> R + Send + Sync + 'static,
) -> Vec<R> {
    let each = Arc::new(each);
    let start = Arc::new(Barrier::new(INSTANCES));
    (0..INSTANCES)
        .map(|i| {
            let (store, each, start) = (store.clone(), each.clone(), start.clone());
            std::thread::spawn(move || {
                let mut core = shared_core(&store, max).with_flood_guard(guard);
                start.wait();
                each(i, &mut core)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect()
}

#[test]
fn three_hundred_registrations_on_three_instances_against_a_cap_of_fifty_store_exactly_fifty() {
    for (engine, store) in shared_stores() {
        let outcomes = on_every_instance(&store, 50, |_, core| {
            (0..100)
                .map(|_| {
                    core.register(RegisterClient {
                        metadata: metadata(AuthMethod::None),
                        origin: None,
                        now: T0,
                    })
                })
                .collect::<Vec<_>>()
        });
        let outcomes: Vec<_> = outcomes.into_iter().flatten().collect();
        let stored = outcomes.iter().filter(|r| r.is_ok()).count();
        let full = outcomes
            .iter()
            .filter(|r| matches!(r, Err(RegistryError::Full(50))))
            .count();
        assert_eq!((stored, full), (50, 250), "{engine}");
        assert_eq!(store.len(Tree::Clients).unwrap(), 50, "{engine}");
        assert_eq!(
            shared_core(&store, 50).count(CountClients).unwrap(),
            50,
            "{engine}"
        );
    }
}

#[test]
fn a_client_disabled_on_one_instance_stays_disabled_while_others_record_its_use() {
    for round in 0..5 {
        let store: SharedStore = Arc::new(SlowReads::default());
        let id = register(&mut shared_core(&store, 10), AuthMethod::None, T0)
            .client
            .client_id;
        let client = id.clone();
        let outcomes = on_every_instance(&store, 10, move |i, core| {
            if i == 0 {
                core.set_disabled(SetClientDisabled {
                    client_id: id.clone(),
                    disabled: true,
                })
                .map(|_| ())
            } else {
                core.record_use(RecordClientUse {
                    client_id: id.clone(),
                    now: T0 + USE_WRITE_INTERVAL * (i as i64 + 1),
                })
            }
        });
        assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
        let core = shared_core(&store, 10);
        let record = core.reader().load(client.as_str()).unwrap().unwrap();
        assert!(
            record.disabled,
            "round {round}: a use stamp undid the operator's change"
        );
    }
}

#[test]
fn instances_purging_at_once_count_each_removed_client_once() {
    let store: SharedStore = Arc::new(SlowReads::default());
    let mut first = shared_core(&store, 100);
    for _ in 0..20 {
        register(&mut first, AuthMethod::None, T0); // never used: expires
    }
    for _ in 0..10 {
        let r = register(&mut first, AuthMethod::None, T0 + 2 * 3600);
        assert!(auth(&mut first, &r, None, AuthMethod::None, T0 + 2 * 3600));
    }
    assert_eq!(first.count(CountClients).unwrap(), 30);
    let removed = on_every_instance(&store, 100, |_, core| {
        core.purge_expired(PurgeExpired {
            now: T0 + 2 * 3600 + 1,
            limit: usize::MAX,
            after: None,
            scan: usize::MAX,
        })
        .unwrap()
        .removed
        .len()
    });
    assert_eq!(removed.iter().sum::<usize>(), 20, "{removed:?}");
    assert_eq!(store.len(Tree::Clients).unwrap(), 10);
    assert_eq!(shared_core(&store, 100).count(CountClients).unwrap(), 10);
}

#[test]
fn the_shared_count_starts_from_the_clients_already_stored() {
    let store: SharedStore = Arc::new(MemoryStore::new());
    let mut local = RegistryCore::new(Owned::new(store.clone()), POLICY, 5, false);
    for _ in 0..4 {
        register(&mut local, AuthMethod::None, T0);
    }
    assert_eq!(
        store.len(Tree::Counters).unwrap(),
        0,
        "a single instance keeps no count record"
    );
    let mut shared = shared_core(&store, 5);
    register(&mut shared, AuthMethod::None, T0);
    let refused = shared.register(RegisterClient {
        metadata: metadata(AuthMethod::None),
        origin: None,
        now: T0,
    });
    assert!(
        matches!(refused, Err(RegistryError::Full(5))),
        "{refused:?}"
    );
}

const PER_ADDRESS: FloodGuard = FloodGuard {
    max_unused_per_origin: 5,
    evict_unused_after: None,
};

fn register_from(
    core: &mut RegistryCore,
    origin: &str,
    now: i64,
) -> Result<Registered, RegistryError> {
    core.register(RegisterClient {
        metadata: metadata(AuthMethod::None),
        origin: Some(origin.into()),
        now,
    })
}

#[test]
fn one_address_registering_on_three_instances_at_once_gets_its_cap_of_unused_registrations_once() {
    for (engine, store) in shared_stores() {
        let outcomes = on_every_guarded_instance(&store, 1000, PER_ADDRESS, |_, core| {
            (0..10)
                .map(|_| register_from(core, "203.0.113.7", T0))
                .collect::<Vec<_>>()
        });
        let outcomes: Vec<_> = outcomes.into_iter().flatten().collect();
        let stored = outcomes.iter().filter(|r| r.is_ok()).count();
        let refused = outcomes
            .iter()
            .filter(|r| matches!(r, Err(RegistryError::TooManyUnused(5))))
            .count();
        assert_eq!((stored, refused), (5, 25), "{engine}: {outcomes:?}");
        let mut other = shared_core(&store, 1000).with_flood_guard(PER_ADDRESS);
        assert!(
            register_from(&mut other, "198.51.100.9", T0).is_ok(),
            "{engine}: another address is not held back"
        );
    }
}

#[test]
fn a_registration_used_on_one_instance_frees_its_addresss_room_on_another() {
    let store: SharedStore = Arc::new(SlowReads::default());
    let guard = FloodGuard {
        max_unused_per_origin: 2,
        evict_unused_after: None,
    };
    let mut a = shared_core(&store, 100).with_flood_guard(guard);
    let mut b = shared_core(&store, 100).with_flood_guard(guard);
    let mut c = shared_core(&store, 100).with_flood_guard(guard);
    let first = register_from(&mut a, "203.0.113.7", T0).unwrap();
    register_from(&mut b, "203.0.113.7", T0 + 1).unwrap();
    assert!(matches!(
        register_from(&mut c, "203.0.113.7", T0 + 2),
        Err(RegistryError::TooManyUnused(2))
    ));
    assert!(auth(&mut b, &first, None, AuthMethod::None, T0 + 3));
    assert!(register_from(&mut c, "203.0.113.7", T0 + 4).is_ok());
    assert!(matches!(
        register_from(&mut a, "203.0.113.7", T0 + 5),
        Err(RegistryError::TooManyUnused(2))
    ));
}

#[test]
fn the_purge_forgets_an_addresss_record_once_its_registrations_expired() {
    let store: SharedStore = Arc::new(MemoryStore::new());
    let mut core = shared_core(&store, 100).with_flood_guard(PER_ADDRESS);
    register_from(&mut core, "203.0.113.7", T0).unwrap();
    register_from(&mut core, "198.51.100.9", T0 + 600).unwrap();
    let origins = |store: &SharedStore| {
        store
            .scan_prefix(Tree::Counters, b"origin/", None, 10)
            .unwrap()
            .len()
    };
    assert_eq!(origins(&store), 2);
    let purge = |core: &mut RegistryCore, now| {
        core.purge_expired(PurgeExpired {
            now,
            limit: usize::MAX,
            after: None,
            scan: usize::MAX,
        })
        .unwrap()
    };
    purge(&mut core, T0 + POLICY.unused_seconds);
    assert_eq!(
        origins(&store),
        1,
        "the first address's registration expired"
    );
    purge(&mut core, T0 + 600 + POLICY.unused_seconds);
    assert_eq!(origins(&store), 0);
    for _ in 0..5 {
        register_from(&mut core, "203.0.113.7", T0 + 7200).unwrap();
    }
}
