//! Registration management (RFC 7592) and operators' changes.

use super::*;

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
