//! The Registry's rules, driven through `RegistryCore` with a memory store
//! and explicit times.

use std::sync::Arc;

use super::core::REGISTRATION_TOKEN_PREFIX;
use super::record::USE_WRITE_INTERVAL;
use super::*;
use crate::actors::handle::Reads;
use crate::domain::{AuthMethod, ClientId, ClientMetadata, GrantType, SecretToken};
use crate::storage::{MemoryStore, SharedStore, Tree};

const T0: i64 = 1_700_000_000;
const POLICY: ExpiryPolicy = ExpiryPolicy {
    unused_seconds: 3600,
    idle_seconds: 24 * 3600,
};

fn metadata(method: AuthMethod) -> ClientMetadata {
    ClientMetadata {
        client_name: Some("Test".into()),
        redirect_uris: vec!["https://app.example/cb".into()],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scope: None,
        contacts: vec![],
        logo_uri: None,
        client_uri: None,
        policy_uri: None,
        tos_uri: None,
        auth_method: method,
        software_id: None,
        software_version: None,
        upstream_client_id: None,
    }
}

fn core(max: usize) -> (RegistryCore, SharedStore) {
    let store: SharedStore = Arc::new(MemoryStore::new());
    (
        RegistryCore::open(store.clone(), POLICY, max, true).unwrap(),
        store,
    )
}

fn register(core: &mut RegistryCore, method: AuthMethod, now: i64) -> Registered {
    core.register(RegisterClient {
        metadata: metadata(method),
        origin: None,
        now,
    })
    .unwrap()
}

/// Client authentication as production does it: the token endpoint reads
/// through the reader (`Handle::read`), and the actor records the use it
/// is told about (`RecordClientUse`, written only when stale).
fn auth(
    core: &mut RegistryCore,
    r: &Registered,
    secret: Option<SecretToken>,
    method: AuthMethod,
    now: i64,
) -> bool {
    authenticate(core, &r.client.client_id, secret, method, now).is_ok()
}

fn authenticate(
    core: &mut RegistryCore,
    client_id: &str,
    secret: Option<SecretToken>,
    method: AuthMethod,
    now: i64,
) -> Result<ClientView, RegistryError> {
    let view = core.reader().read(AuthenticateClient {
        client_id: client_id.to_owned(),
        method,
        secret,
        now,
    })?;
    core.record_use(RecordClientUse {
        client_id: ClientId::parse(client_id).unwrap(),
        now,
    })?;
    Ok(view)
}

#[test]
fn only_hashes_of_secrets_are_stored() {
    let (mut core, store) = core(10);
    let r = register(&mut core, AuthMethod::ClientSecretPost, T0);
    let raw = store
        .get(Tree::Clients, r.client.client_id.as_bytes())
        .unwrap()
        .unwrap();
    let secret = r
        .client_secret
        .as_ref()
        .unwrap()
        .expose()
        .as_bytes()
        .to_vec();
    let token = r.registration_token.expose().as_bytes().to_vec();
    assert!(!raw.windows(secret.len()).any(|w| w == secret));
    assert!(!raw.windows(token.len()).any(|w| w == token));
    assert!(ClientId::parse(&r.client.client_id).is_some());
}

#[test]
fn the_secret_authenticates_with_the_registered_method_only() {
    let (mut core, _) = core(10);
    let r = register(&mut core, AuthMethod::ClientSecretBasic, T0);
    let secret = r.client_secret.clone();
    assert!(auth(
        &mut core,
        &r,
        secret.clone(),
        AuthMethod::ClientSecretBasic,
        T0
    ));
    assert!(!auth(
        &mut core,
        &r,
        secret,
        AuthMethod::ClientSecretPost,
        T0
    ));
    assert!(!auth(
        &mut core,
        &r,
        Some(SecretToken::presented("mcp_cs_wrong")),
        AuthMethod::ClientSecretBasic,
        T0
    ));
    assert!(!auth(&mut core, &r, None, AuthMethod::None, T0));
}

#[test]
fn public_clients_get_no_secret_and_authenticate_without_one() {
    let (mut core, _) = core(10);
    let r = register(&mut core, AuthMethod::None, T0);
    assert!(r.client_secret.is_none());
    assert!(auth(&mut core, &r, None, AuthMethod::None, T0));
    assert!(!auth(
        &mut core,
        &r,
        Some(SecretToken::presented("anything")),
        AuthMethod::ClientSecretPost,
        T0
    ));
}

#[test]
fn a_client_never_used_expires_after_the_short_unused_window() {
    let (mut core, _) = core(10);
    let r = register(&mut core, AuthMethod::None, T0);
    let token = r.registration_token.clone();
    let id = ClientId::parse(&r.client.client_id).unwrap();
    let read = |core: &mut RegistryCore, now| {
        core.read(ReadClient {
            client_id: id.clone(),
            registration_token: token.clone(),
            now,
        })
        .is_ok()
    };
    assert!(read(&mut core, T0 + 3599));
    assert!(!read(&mut core, T0 + 3600));
}

#[test]
fn a_used_client_lives_for_the_idle_window_after_its_last_use() {
    let (mut core, _) = core(10);
    let r = register(&mut core, AuthMethod::None, T0);
    assert!(auth(&mut core, &r, None, AuthMethod::None, T0 + 3000));
    // Well past the unused window, inside the idle window from the last use.
    assert!(auth(
        &mut core,
        &r,
        None,
        AuthMethod::None,
        T0 + 3000 + 23 * 3600
    ));
    let last = T0 + 3000 + 23 * 3600;
    assert!(!auth(
        &mut core,
        &r,
        None,
        AuthMethod::None,
        last + 24 * 3600
    ));
}

#[test]
fn the_cap_refuses_new_clients_until_expired_ones_are_purged() {
    let (mut core, _) = core(2);
    register(&mut core, AuthMethod::None, T0);
    register(&mut core, AuthMethod::None, T0);
    let full = core.register(RegisterClient {
        metadata: metadata(AuthMethod::None),
        origin: None,
        now: T0 + 10,
    });
    assert!(matches!(full, Err(RegistryError::Full(2))));
    // After the unused window the stale registrations make room.
    assert!(core
        .register(RegisterClient {
            metadata: metadata(AuthMethod::None),
            origin: None,
            now: T0 + 3600
        })
        .is_ok());
    assert_eq!(core.count(CountClients).unwrap(), 1);
}

#[test]
fn purge_removes_only_expired_clients_and_respects_its_limit() {
    let (mut core, store) = core(100);
    for _ in 0..5 {
        register(&mut core, AuthMethod::None, T0);
    }
    let keep = register(&mut core, AuthMethod::None, T0 + 3000);
    let report = core
        .purge_expired(PurgeExpired {
            now: T0 + 3600,
            limit: 3,
            after: None,
            scan: usize::MAX,
        })
        .unwrap();
    assert_eq!(report.removed.len(), 3);
    let report = core
        .purge_expired(PurgeExpired {
            now: T0 + 3600,
            limit: 100,
            after: None,
            scan: usize::MAX,
        })
        .unwrap();
    assert_eq!(report.removed.len(), 2);
    assert!(!report.removed.contains(&keep.client.client_id));
    assert_eq!(store.len(Tree::Clients).unwrap(), 1);
    assert_eq!(core.count(CountClients).unwrap(), 1);
}

#[test]
fn update_moves_between_public_and_confidential() {
    let (mut core, _) = core(10);
    let r = register(&mut core, AuthMethod::None, T0);
    let id = ClientId::parse(&r.client.client_id).unwrap();
    let updated = core
        .update(UpdateClient {
            client_id: id.clone(),
            registration_token: r.registration_token.clone(),
            presented_secret: None,
            metadata: metadata(AuthMethod::ClientSecretPost),
            now: T0 + 5,
        })
        .unwrap();
    let secret = updated
        .new_secret
        .clone()
        .expect("a secret is issued on the move to client_secret_post");
    assert!(auth(
        &mut core,
        &r,
        Some(secret.clone()),
        AuthMethod::ClientSecretPost,
        T0 + 6
    ));
    let wrong = core.update(UpdateClient {
        client_id: id,
        registration_token: r.registration_token.clone(),
        presented_secret: Some(SecretToken::presented("not-it")),
        metadata: metadata(AuthMethod::None),
        now: T0 + 7,
    });
    assert!(matches!(wrong, Err(RegistryError::Metadata(_))));
    assert!(auth(
        &mut core,
        &r,
        Some(secret),
        AuthMethod::ClientSecretPost,
        T0 + 8
    ));
}

#[test]
fn delete_needs_the_clients_own_token() {
    let (mut core, _) = core(10);
    let a = register(&mut core, AuthMethod::None, T0);
    let b = register(&mut core, AuthMethod::None, T0);
    let id = ClientId::parse(&a.client.client_id).unwrap();
    let wrong = core.delete(DeleteClient {
        client_id: id.clone(),
        registration_token: b.registration_token.clone(),
        now: T0,
    });
    assert!(matches!(wrong, Err(RegistryError::InvalidToken)));
    core.delete(DeleteClient {
        client_id: id,
        registration_token: a.registration_token.clone(),
        now: T0,
    })
    .unwrap();
    assert!(!auth(&mut core, &a, None, AuthMethod::None, T0));
    assert_eq!(core.count(CountClients).unwrap(), 1);
}

#[test]
fn a_purge_in_small_steps_walks_the_whole_registry_once() {
    let (mut core, store) = core(100);
    let mut expired = 0;
    for i in 0..25 {
        let at = if i % 3 == 0 { T0 + 3000 } else { T0 };
        expired += usize::from(at == T0);
        register(&mut core, AuthMethod::None, at);
    }
    let (mut after, mut steps, mut removed) = (None, 0, 0);
    loop {
        let report = core
            .purge_expired(PurgeExpired {
                now: T0 + 3600,
                limit: 4,
                after: after.take(),
                scan: 5,
            })
            .unwrap();
        assert!(report.scanned <= 5 && report.removed.len() <= 4);
        removed += report.removed.len();
        steps += 1;
        match report.next {
            Some(next) => after = Some(next),
            None => break,
        }
        assert!(steps < 100, "the walk must end");
    }
    assert_eq!(removed, expired);
    assert_eq!(store.len(Tree::Clients).unwrap(), 25 - expired);
    assert!(steps >= 5, "bounded steps: {steps}");
}

#[test]
fn the_start_up_count_stays_exact_while_clients_come_and_go() {
    let (mut first, store) = core(1_000_000);
    let mut ids = Vec::new();
    for _ in 0..20_000 {
        ids.push(register(&mut first, AuthMethod::None, T0).client.client_id);
    }
    // A restart: the count runs in steps, with changes in between.
    let mut core = RegistryCore::open(store.clone(), POLICY, 1_000_000, false).unwrap();
    assert!(core.count_step().unwrap(), "more than one step");
    for id in ids.iter().take(300) {
        core.delete_for_test(id);
    }
    for id in ids.iter().rev().take(300) {
        core.delete_for_test(id);
    }
    for _ in 0..50 {
        register(&mut core, AuthMethod::None, T0);
    }
    while core.count_step().unwrap() {}
    assert_eq!(
        core.count(CountClients).unwrap(),
        store.len(Tree::Clients).unwrap()
    );
    assert_eq!(store.len(Tree::Clients).unwrap(), 20_000 - 600 + 50);
}

// --- Client authentication through the reader (the production path) ---

fn secret_of(r: &Registered) -> Option<SecretToken> {
    r.client_secret.clone()
}

#[test]
fn a_client_secret_post_client_authenticates_with_its_secret_in_the_body_only() {
    let (mut core, _) = core(10);
    let r = register(&mut core, AuthMethod::ClientSecretPost, T0);
    assert!(auth(
        &mut core,
        &r,
        secret_of(&r),
        AuthMethod::ClientSecretPost,
        T0
    ));
    assert!(!auth(
        &mut core,
        &r,
        secret_of(&r),
        AuthMethod::ClientSecretBasic,
        T0
    ));
    assert!(!auth(&mut core, &r, None, AuthMethod::ClientSecretPost, T0));
    assert!(!auth(&mut core, &r, None, AuthMethod::None, T0));
}

#[test]
fn a_wrong_secret_is_refused_however_close_it_is() {
    let (mut core, _) = core(10);
    let r = register(&mut core, AuthMethod::ClientSecretBasic, T0);
    let real = r.client_secret.as_ref().unwrap().expose().to_owned();
    let mut near = real.clone();
    let last = near.pop().unwrap();
    near.push(if last == 'A' { 'B' } else { 'A' });
    for wrong in [
        near,
        real[..real.len() - 1].to_owned(),
        format!("{real}x"),
        String::new(),
    ] {
        let r2 = authenticate(
            &mut core,
            &r.client.client_id,
            Some(SecretToken::presented(wrong)),
            AuthMethod::ClientSecretBasic,
            T0,
        );
        assert!(matches!(r2, Err(RegistryError::InvalidClient)));
    }
    // Another client's secret is no better.
    let other = register(&mut core, AuthMethod::ClientSecretBasic, T0);
    assert!(!auth(
        &mut core,
        &r,
        secret_of(&other),
        AuthMethod::ClientSecretBasic,
        T0
    ));
}

#[test]
fn an_unknown_or_malformed_client_id_is_refused_as_invalid_client() {
    let (core, _) = core(10);
    for id in [
        ClientId::generate().as_str().to_owned(),
        "not-a-client-id".to_owned(),
        String::new(),
    ] {
        let r = core.reader().read(AuthenticateClient {
            client_id: id,
            method: AuthMethod::ClientSecretPost,
            secret: Some(SecretToken::presented("mcp_cs_guess")),
            now: T0,
        });
        assert!(matches!(r, Err(RegistryError::InvalidClient)));
    }
}

#[test]
fn a_disabled_client_cannot_authenticate_until_enabled_again() {
    let (mut core, _) = core(10);
    let r = register(&mut core, AuthMethod::ClientSecretPost, T0);
    let set = |core: &mut RegistryCore, disabled| {
        core.set_disabled(SetClientDisabled {
            client_id: r.client.client_id.clone(),
            disabled,
        })
        .unwrap()
    };
    assert!(set(&mut core, true));
    assert!(!auth(
        &mut core,
        &r,
        secret_of(&r),
        AuthMethod::ClientSecretPost,
        T0 + 1
    ));
    let seen = core
        .reader()
        .read(GetClient {
            client_id: r.client.client_id.clone(),
            now: T0 + 1,
        })
        .unwrap();
    assert!(
        seen.is_none(),
        "a disabled client is still looked up as live"
    );
    assert!(set(&mut core, false));
    assert!(auth(
        &mut core,
        &r,
        secret_of(&r),
        AuthMethod::ClientSecretPost,
        T0 + 2
    ));
}

#[test]
fn a_client_never_used_cannot_authenticate_once_the_unused_window_has_passed() {
    let (mut core, _) = core(10);
    let r = register(&mut core, AuthMethod::ClientSecretPost, T0);
    let late = T0 + POLICY.unused_seconds;
    assert!(!auth(
        &mut core,
        &r,
        secret_of(&r),
        AuthMethod::ClientSecretPost,
        late
    ));
}

#[test]
fn a_client_idle_past_the_idle_window_cannot_authenticate() {
    let (mut core, _) = core(10);
    let r = register(&mut core, AuthMethod::ClientSecretBasic, T0);
    assert!(auth(
        &mut core,
        &r,
        secret_of(&r),
        AuthMethod::ClientSecretBasic,
        T0 + 10
    ));
    let idle_end = T0 + 10 + POLICY.idle_seconds;
    assert!(auth(
        &mut core,
        &r,
        secret_of(&r),
        AuthMethod::ClientSecretBasic,
        idle_end - 1
    ));
    // The use at idle_end - 1 moved the window on.
    assert!(auth(
        &mut core,
        &r,
        secret_of(&r),
        AuthMethod::ClientSecretBasic,
        idle_end + 100
    ));
    let gone = idle_end + 100 + POLICY.idle_seconds;
    assert!(!auth(
        &mut core,
        &r,
        secret_of(&r),
        AuthMethod::ClientSecretBasic,
        gone
    ));
}

#[test]
fn uses_are_written_back_at_most_once_a_minute() {
    let (mut core, _) = core(10);
    let r = register(&mut core, AuthMethod::None, T0);
    let used = |core: &mut RegistryCore, now| {
        authenticate(core, &r.client.client_id, None, AuthMethod::None, now)
            .unwrap()
            .last_used_at
    };
    assert_eq!(used(&mut core, T0 + 5), None, "the view is the one read");
    assert_eq!(used(&mut core, T0 + 30), Some(T0 + 5));
    assert_eq!(used(&mut core, T0 + 5 + USE_WRITE_INTERVAL), Some(T0 + 5));
    assert_eq!(
        used(&mut core, T0 + 6 + USE_WRITE_INTERVAL),
        Some(T0 + 5 + USE_WRITE_INTERVAL)
    );
}

// --- Registration management ---

#[test]
fn a_registration_is_read_with_its_own_token_only() {
    let (mut core, _) = core(10);
    let a = register(&mut core, AuthMethod::None, T0);
    let b = register(&mut core, AuthMethod::None, T0);
    let id = ClientId::parse(&a.client.client_id).unwrap();
    let read = |token: &SecretToken| {
        core.reader().read(ReadClient {
            client_id: id.clone(),
            registration_token: token.clone(),
            now: T0 + 1,
        })
    };
    assert_eq!(
        read(&a.registration_token).unwrap().client_id,
        a.client.client_id
    );
    assert!(matches!(
        read(&b.registration_token),
        Err(RegistryError::InvalidToken)
    ));
    assert!(matches!(
        read(&SecretToken::generate(REGISTRATION_TOKEN_PREFIX)),
        Err(RegistryError::InvalidToken)
    ));
}

#[test]
fn an_update_that_stays_confidential_keeps_the_secret_and_a_move_to_public_drops_it() {
    let (mut core, _) = core(10);
    let r = register(&mut core, AuthMethod::ClientSecretPost, T0);
    let id = ClientId::parse(&r.client.client_id).unwrap();
    let mut renamed = metadata(AuthMethod::ClientSecretPost);
    renamed.client_name = Some("Renamed".into());
    let updated = core
        .update(UpdateClient {
            client_id: id.clone(),
            registration_token: r.registration_token.clone(),
            presented_secret: secret_of(&r),
            metadata: renamed,
            now: T0 + 1,
        })
        .unwrap();
    assert!(updated.new_secret.is_none());
    assert_eq!(
        updated.client.metadata.client_name.as_deref(),
        Some("Renamed")
    );
    assert!(auth(
        &mut core,
        &r,
        secret_of(&r),
        AuthMethod::ClientSecretPost,
        T0 + 2
    ));
    core.update(UpdateClient {
        client_id: id,
        registration_token: r.registration_token.clone(),
        presented_secret: None,
        metadata: metadata(AuthMethod::None),
        now: T0 + 3,
    })
    .unwrap();
    assert!(!auth(
        &mut core,
        &r,
        secret_of(&r),
        AuthMethod::ClientSecretPost,
        T0 + 4
    ));
    assert!(auth(&mut core, &r, None, AuthMethod::None, T0 + 4));
}

#[test]
fn an_update_with_another_clients_token_is_refused_and_changes_nothing() {
    let (mut core, _) = core(10);
    let a = register(&mut core, AuthMethod::ClientSecretPost, T0);
    let b = register(&mut core, AuthMethod::None, T0);
    let r = core.update(UpdateClient {
        client_id: ClientId::parse(&a.client.client_id).unwrap(),
        registration_token: b.registration_token.clone(),
        presented_secret: None,
        metadata: metadata(AuthMethod::None),
        now: T0 + 1,
    });
    assert!(matches!(r, Err(RegistryError::InvalidToken)));
    assert!(auth(
        &mut core,
        &a,
        secret_of(&a),
        AuthMethod::ClientSecretPost,
        T0 + 2
    ));
}

#[test]
fn a_deleted_client_cannot_be_deleted_again_or_authenticate() {
    let (mut core, _) = core(10);
    let a = register(&mut core, AuthMethod::ClientSecretPost, T0);
    let delete = |core: &mut RegistryCore| {
        core.delete(DeleteClient {
            client_id: ClientId::parse(&a.client.client_id).unwrap(),
            registration_token: a.registration_token.clone(),
            now: T0 + 1,
        })
    };
    delete(&mut core).unwrap();
    assert!(matches!(
        delete(&mut core),
        Err(RegistryError::InvalidToken)
    ));
    assert!(!auth(
        &mut core,
        &a,
        secret_of(&a),
        AuthMethod::ClientSecretPost,
        T0 + 2
    ));
    assert_eq!(core.count(CountClients).unwrap(), 0);
}

#[test]
fn a_deleted_client_makes_room_under_the_cap() {
    let (mut core, _) = core(1);
    let a = register(&mut core, AuthMethod::None, T0);
    let full = core.register(RegisterClient {
        metadata: metadata(AuthMethod::None),
        origin: None,
        now: T0 + 1,
    });
    assert!(matches!(full, Err(RegistryError::Full(1))));
    core.delete(DeleteClient {
        client_id: ClientId::parse(&a.client.client_id).unwrap(),
        registration_token: a.registration_token.clone(),
        now: T0 + 2,
    })
    .unwrap();
    register(&mut core, AuthMethod::None, T0 + 3);
}

// --- The flood guard ---

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
