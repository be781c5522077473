//! Client authentication through the reader (the production path).

use super::*;

#[test]
fn a_confidential_client_authenticates_with_its_secret_by_either_standard_method_only() {
    let (mut core, _) = core(10);
    let r = register(&mut core, AuthMethod::ClientSecretPost, T0);
    assert!(auth(
        &mut core,
        &r,
        secret_of(&r),
        AuthMethod::ClientSecretPost,
        T0
    ));
    // Issue #14: the other standard method proves the same secret.
    assert!(auth(
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
            client_id: ClientId::stored(id),
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
