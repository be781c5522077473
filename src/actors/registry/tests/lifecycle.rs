//! Registration, expiry, the cap, the purge and the start-up count.

use super::*;

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
fn the_secret_authenticates_by_a_secret_method_but_never_as_a_public_client() {
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
    // Issue #14: the form proves the same secret as the header.
    assert!(auth(
        &mut core,
        &r,
        secret.clone(),
        AuthMethod::ClientSecretPost,
        T0
    ));
    assert!(!auth(&mut core, &r, secret, AuthMethod::None, T0));
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
        core.reader()
            .read(ReadClient {
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
    let mut core = RegistryCore::new(Owned::new(store.clone()), POLICY, 1_000_000, false);
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
