//! The flood guard: never-used registrations per origin, eviction when full.

use super::*;

const GUARD: FloodGuard = FloodGuard {
    max_unused_per_origin: 2,
    evict_unused_after: Some(600),
};

fn guarded(max: usize) -> RegistryCore {
    core(max).0.with_flood_guard(GUARD)
}

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
fn an_origin_holding_its_cap_of_never_used_registrations_is_refused_and_others_are_not() {
    let mut core = guarded(100);
    register_from(&mut core, "203.0.113.7", T0).unwrap();
    register_from(&mut core, "203.0.113.7", T0 + 1).unwrap();
    let third = register_from(&mut core, "203.0.113.7", T0 + 2);
    assert!(matches!(third, Err(RegistryError::TooManyUnused(2))));
    assert!(register_from(&mut core, "198.51.100.9", T0 + 2).is_ok());
    assert!(core
        .register(RegisterClient {
            metadata: metadata(AuthMethod::None),
            origin: None,
            now: T0 + 2,
        })
        .is_ok());
    assert_eq!(core.count(CountClients).unwrap(), 4);
}

#[test]
fn a_registration_that_was_used_no_longer_counts_against_its_origin() {
    let mut core = guarded(100);
    let first = register_from(&mut core, "203.0.113.7", T0).unwrap();
    register_from(&mut core, "203.0.113.7", T0 + 1).unwrap();
    assert!(auth(&mut core, &first, None, AuthMethod::None, T0 + 2));
    assert!(register_from(&mut core, "203.0.113.7", T0 + 3).is_ok());
    assert!(matches!(
        register_from(&mut core, "203.0.113.7", T0 + 4),
        Err(RegistryError::TooManyUnused(2))
    ));
}

#[test]
fn a_deleted_or_expired_registration_no_longer_counts_against_its_origin() {
    let mut core = guarded(100);
    let first = register_from(&mut core, "203.0.113.7", T0).unwrap();
    register_from(&mut core, "203.0.113.7", T0 + 1000).unwrap();
    core.delete(DeleteClient {
        client_id: ClientId::parse(&first.client.client_id).unwrap(),
        registration_token: first.registration_token.clone(),
        now: T0 + 1001,
    })
    .unwrap();
    register_from(&mut core, "203.0.113.7", T0 + 1002).unwrap();
    // Both held now; the older one expires unused at T0 + 1000 + 3600.
    assert!(register_from(&mut core, "203.0.113.7", T0 + 4599).is_err());
    assert!(register_from(&mut core, "203.0.113.7", T0 + 4600).is_ok());
}

#[test]
fn a_full_registry_evicts_its_oldest_never_used_registration_past_the_minimum_age() {
    let mut core = guarded(3);
    let oldest = register_from(&mut core, "a", T0).unwrap();
    let used = register_from(&mut core, "b", T0 - 100).unwrap();
    assert!(auth(&mut core, &used, None, AuthMethod::None, T0));
    let younger = register_from(&mut core, "c", T0 + 10).unwrap();
    let fresh = register_from(&mut core, "d", T0 + 700).unwrap();
    assert_eq!(
        fresh.evicted.as_deref(),
        Some(oldest.client.client_id.as_str())
    );
    assert!(!auth(&mut core, &oldest, None, AuthMethod::None, T0 + 701));
    assert!(auth(&mut core, &used, None, AuthMethod::None, T0 + 701));
    assert!(auth(&mut core, &younger, None, AuthMethod::None, T0 + 701));
    assert_eq!(core.count(CountClients).unwrap(), 3);
}

#[test]
fn a_full_registry_of_fresh_or_used_clients_refuses_instead_of_evicting() {
    let mut core = guarded(2);
    let used = register_from(&mut core, "a", T0).unwrap();
    assert!(auth(&mut core, &used, None, AuthMethod::None, T0 + 1));
    let recent = register_from(&mut core, "b", T0 + 100).unwrap();
    let r = register_from(&mut core, "c", T0 + 600);
    assert!(matches!(r, Err(RegistryError::Full(2))));
    assert!(auth(&mut core, &used, None, AuthMethod::None, T0 + 601));
    let still = core.reader().read(GetClient {
        client_id: recent.client.client_id.clone(),
        now: T0 + 601,
    });
    assert!(still.unwrap().is_some(), "a fresh registration was evicted");
    // Once the never-used one is old enough, it makes room.
    let later = register_from(&mut core, "c", T0 + 700).unwrap();
    assert_eq!(
        later.evicted.as_deref(),
        Some(recent.client.client_id.as_str())
    );
}

#[test]
fn without_the_flood_guard_a_full_registry_refuses_and_origins_are_not_capped() {
    let (mut core, _) = core(3);
    for i in 0..3 {
        register_from(&mut core, "203.0.113.7", T0 + i).unwrap();
    }
    assert!(matches!(
        register_from(&mut core, "203.0.113.7", T0 + 3000),
        Err(RegistryError::Full(3))
    ));
}

#[test]
fn a_registration_used_after_the_eviction_scan_is_not_evicted() {
    let mut core = guarded(3);
    let a = register_from(&mut core, "a", T0).unwrap();
    let b = register_from(&mut core, "b", T0 + 1).unwrap();
    let c = register_from(&mut core, "c", T0 + 2).unwrap();
    // This eviction scans and remembers a, b and c as candidates.
    let d = register_from(&mut core, "d", T0 + 700).unwrap();
    assert_eq!(d.evicted.as_deref(), Some(a.client.client_id.as_str()));
    // b signs in before the next eviction.
    assert!(auth(&mut core, &b, None, AuthMethod::None, T0 + 701));
    let e = register_from(&mut core, "e", T0 + 702).unwrap();
    assert_eq!(e.evicted.as_deref(), Some(c.client.client_id.as_str()));
    assert!(auth(&mut core, &b, None, AuthMethod::None, T0 + 703));
}
