//! Fills a Drawbridge data directory for the scale benchmark, through the
//! same Registry and TokenBroker code the server runs (no flush per write,
//! one flush at the end). Configuration comes from the environment and
//! `config.toml`, exactly as for `drawbridge serve`; the server must be
//! stopped (the data directory is locked).
//!
//! Usage: bench-seed [--clients N] [--sign-ins N] [--expired-clients N]
//! Each sign-in stores a grant and two live tokens (access and refresh).

use std::sync::Arc;
use std::time::Instant;

use drawbridge::actors::registry::{ExpiryPolicy, RegisterClient, RegistryCore};
use drawbridge::actors::token_broker::{
    AuthTransaction, IssueCode, RedeemCode, TokenBrokerCore, TokenPolicy,
};
use drawbridge::clock::Clock;
use drawbridge::configuration;
use drawbridge::domain::{AuthMethod, ClientMetadata, GrantType, SecretToken};
use drawbridge::persistence;
use drawbridge::storage::{keys, Batch, Owned, Tree};

fn metadata(name: &str, method: AuthMethod) -> ClientMetadata {
    ClientMetadata {
        client_name: Some(name.into()),
        redirect_uris: vec![drawbridge::domain::RedirectUri::parse(
            "http://127.0.0.1:9/callback",
            &[],
        )
        .unwrap()],
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
        application_type: drawbridge::domain::ApplicationType::Native,
    }
}

fn arg(name: &str) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.replace('_', "").parse().expect("a number"))
        .unwrap_or(0)
}

fn main() {
    let (clients, sign_ins, expired) = (
        arg("--clients"),
        arg("--sign-ins"),
        arg("--expired-clients"),
    );
    let (config, _) = configuration::load(None).unwrap_or_else(|e| panic!("{e}"));
    let now = Clock::System.now();
    let opening = Instant::now();
    let _lock = persistence::lock_dir(&config).expect("the server is stopped");
    let opened =
        persistence::open_mode(&config, config.storage.mode, false, now).expect("storage opens");
    let store = opened.store.clone();
    eprintln!(
        "opened the store in {:.2} s",
        opening.elapsed().as_secs_f64()
    );
    let policy = ExpiryPolicy {
        unused_seconds: config.clients.unused_expiry.as_secs() as i64,
        idle_seconds: config.clients.expiry.as_secs() as i64,
    };
    let counting = Instant::now();
    let mut registry = RegistryCore::new(Owned::new(store.clone()), policy, usize::MAX, false);
    eprintln!(
        "counted the clients in {:.2} s",
        counting.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    for i in 0..clients {
        registry
            .register(RegisterClient {
                metadata: metadata(&format!("seeded client {i}"), AuthMethod::ClientSecretPost),
                origin: None,
                now,
            })
            .unwrap();
    }
    eprintln!(
        "seeded {clients} clients in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    if sign_ins > 0 {
        let owner = registry
            .register(RegisterClient {
                metadata: metadata("seeded sign-ins", AuthMethod::ClientSecretPost),
                origin: None,
                now,
            })
            .unwrap();
        let client_id = owner.client.client_id.clone();
        let mut broker = TokenBrokerCore::new(
            Owned::new(store.clone()),
            TokenPolicy {
                transaction_ttl: config.tokens.transaction_ttl,
                code_ttl: config.tokens.code_ttl,
                access_ttl: config.tokens.access_ttl,
                refresh_idle: config.tokens.refresh_idle,
                grant_lifetime: config.tokens.grant_lifetime,
                refresh_grace: config.tokens.refresh_grace,
                flush_every_write: false,
            },
        );
        let verifier = drawbridge::domain::pkce::new_verifier();
        let challenge = drawbridge::domain::pkce::challenge_of(&verifier);
        for _ in 0..sign_ins {
            let transaction = AuthTransaction {
                client_id: client_id.clone(),
                redirect_uri: "http://127.0.0.1:9/callback".into(),
                client_state: String::new(),
                code_challenge: challenge.clone(),
                scopes: vec!["openid".into(), "email".into()],
                resource: None,
                csrf_hash: SecretToken::generate("").hash(),
                approved: true,
                upstream_client_id: None,
                created_at: now,
                expires_at: now + 600,
                browser_hash: None,
            };
            let code = broker
                .issue_code(IssueCode {
                    transaction,
                    user: "u_seeded".into(),
                    now,
                })
                .unwrap();
            broker
                .redeem(RedeemCode {
                    code,
                    client_id: client_id.clone(),
                    redirect_uri: Some("http://127.0.0.1:9/callback".into()),
                    code_verifier: Some(verifier.clone()),
                    resource: None,
                    mint: true,
                    with_refresh: true,
                    now,
                })
                .unwrap();
        }
    }
    eprintln!(
        "seeded {sign_ins} sign-ins ({} live tokens) in {:.1} s",
        sign_ins * 2,
        started.elapsed().as_secs_f64()
    );

    // Clients registered two days ago and never used: expired, for the
    // janitor to purge.
    let started = Instant::now();
    let hash = SecretToken::generate("").hash();
    let mut batch = Batch::new();
    for i in 0..expired {
        let id = format!("mcp_expired{i:017}");
        let record = drawbridge::actors::registry::ClientRecord {
            client_id: drawbridge::domain::ClientId::stored(id.clone()),
            secret_hash: None,
            registration_token_hash: hash,
            metadata: metadata("expired", AuthMethod::None),
            issued_at: now - 2 * 86400,
            last_used_at: None,
            updated_at: now - 2 * 86400,
            disabled: false,
            document: None,
        };
        batch.insert(Tree::Clients, keys::client(&id), record.encode().unwrap());
        if batch.ops().len() == 10_000 {
            store.apply(std::mem::take(&mut batch)).unwrap();
        }
    }
    if !batch.is_empty() {
        store.apply(batch).unwrap();
    }
    eprintln!(
        "seeded {expired} expired clients in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    store.flush().unwrap();
    drop(Arc::clone(&store));
}
