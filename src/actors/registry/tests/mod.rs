//! The Registry's rules, driven through `RegistryCore` with a memory store
//! and explicit times.

use std::sync::Arc;

use super::core::REGISTRATION_TOKEN_PREFIX;
use super::record::USE_WRITE_INTERVAL;
use super::*;
use crate::actors::handle::Reads;
use crate::domain::{AuthMethod, ClientId, ClientMetadata, GrantType, SecretToken};
use crate::storage::{MemoryStore, Owned, SharedStore, Tree};

const T0: i64 = 1_700_000_000;
const POLICY: ExpiryPolicy = ExpiryPolicy {
    unused_seconds: 3600,
    idle_seconds: 24 * 3600,
};

fn metadata(method: AuthMethod) -> ClientMetadata {
    ClientMetadata {
        client_name: Some("Test".into()),
        redirect_uris: vec![
            crate::domain::RedirectUri::parse("https://app.example/cb", &[]).unwrap(),
        ],
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
        application_type: crate::domain::ApplicationType::Web,
    }
}

fn core(max: usize) -> (RegistryCore, SharedStore) {
    let store: SharedStore = Arc::new(MemoryStore::new());
    (
        RegistryCore::new(Owned::new(store.clone()), POLICY, max, true),
        store,
    )
}

fn secret_of(r: &Registered) -> Option<SecretToken> {
    r.client_secret.clone()
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
        client_id: ClientId::stored(client_id),
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

mod authentication;
mod flood_guard;
mod instances;
mod lifecycle;
mod management;
mod timeline;
