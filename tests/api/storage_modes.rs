//! The storage modes, the key file, key rotation and migration, driven
//! through the `drawbridge` binary as an operator would.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use drawbridge::actors::handle::Reads;
use drawbridge::actors::registry::{
    AuthenticateClient, ExpiryPolicy, RegisterClient, RegistryCore,
};
use drawbridge::actors::vault::{UpstreamTokens, UserCredentials, UserRef};
use drawbridge::configuration::{load_from, Config};
use drawbridge::domain::{AuthMethod, ClientMetadata, GrantType, SecretToken};
use drawbridge::persistence;
use drawbridge::storage::Owned;
use serde_json::Value;

use crate::binary::{drawbridge, start, terminate};
use crate::helpers::sample_registration;

/// The configuration the binary sees when run in `dir` with `mode`.
fn config(dir: &Path, mode: &str) -> Config {
    let vars: BTreeMap<String, String> = [
        ("CREDENTIALS_DIR", dir.join("creds").display().to_string()),
        (
            "AUTH_ENCRYPTION_KEY_FILE",
            dir.join(".auth_encryption_key").display().to_string(),
        ),
        ("CREDENTIAL_STORAGE_MODE", mode.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    load_from(None, &vars).unwrap().0
}

async fn register(port: u16) -> (String, String) {
    let body: Value = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/oauth/register"))
        .json(&sample_registration())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        body["client_id"].as_str().unwrap().to_owned(),
        body["registration_access_token"]
            .as_str()
            .unwrap()
            .to_owned(),
    )
}

async fn health(port: u16) -> Value {
    reqwest::get(format!("http://127.0.0.1:{port}/health/oauth"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn read_status(port: u16, id: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/oauth/register/{id}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[actix_web::test]
async fn each_storage_mode_keeps_registrations_across_a_restart_exactly_as_documented() {
    for (mode, kept) in [
        ("FILE_ENCRYPTED", true),
        ("FILE_PLAINTEXT", true),
        ("MEMORY_WITH_BACKUP", true),
        ("MEMORY_ONLY", false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let env = [
            ("CREDENTIALS_DIR", "creds"),
            ("CREDENTIAL_STORAGE_MODE", mode),
        ];
        let server = start(dir.path(), &env);
        let (id, token) = register(server.port).await;
        let (code, logs) = terminate(server);
        assert_eq!(code, 0, "{mode}: {logs}");
        let server = start(dir.path(), &env);
        let status = read_status(server.port, &id, &token).await;
        terminate(server);
        assert_eq!(
            status == 200,
            kept,
            "{mode}: read after restart answered {status}"
        );
        if mode == "MEMORY_ONLY" {
            let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
            assert!(entries.is_empty(), "MEMORY_ONLY wrote {entries:?}");
        }
    }
}

#[actix_web::test]
async fn memory_with_backup_snapshots_periodically_so_a_kill_loses_nothing_older() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("CREDENTIALS_DIR", "creds"),
        ("CREDENTIAL_STORAGE_MODE", "MEMORY_WITH_BACKUP"),
        ("DRAWBRIDGE_STORAGE__BACKUP_INTERVAL_SECONDS", "1"),
    ];
    let mut server = start(dir.path(), &env);
    let (id, token) = register(server.port).await;
    actix_web::rt::time::sleep(Duration::from_millis(2500)).await;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let snapshot = std::fs::read(dir.path().join("creds/drawbridge.snapshot")).unwrap();
    assert!(
        !snapshot.windows(id.len()).any(|w| w == id.as_bytes()),
        "the snapshot is encrypted"
    );
    let server = start(dir.path(), &env);
    assert_eq!(read_status(server.port, &id, &token).await, 200);
    terminate(server);
}

#[cfg(unix)]
#[actix_web::test]
async fn the_key_file_is_0600_the_directory_0700_and_a_readable_key_stops_start_up() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let env = [("CREDENTIALS_DIR", "creds")];
    let server = start(dir.path(), &env);
    let health = health(server.port).await;
    terminate(server);
    assert_eq!(health["encryption_enabled"], true);
    assert!(health["encryption_key_id"].is_string());
    let mode = |p: &str| {
        std::fs::metadata(dir.path().join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(".auth_encryption_key"), 0o600);
    assert_eq!(mode("creds"), 0o700);

    std::fs::set_permissions(
        dir.path().join(".auth_encryption_key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = drawbridge(dir.path(), &env).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("chmod 600 .auth_encryption_key"),
        "{stderr}"
    );
}

#[actix_web::test]
async fn plaintext_mode_says_encryption_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &[
            ("CREDENTIALS_DIR", "creds"),
            ("CREDENTIAL_STORAGE_MODE", "FILE_PLAINTEXT"),
        ],
    );
    let health = health(server.port).await;
    let (_, logs) = terminate(server);
    assert_eq!(health["encryption_enabled"], false);
    assert_eq!(health["storage_mode"], "FILE_PLAINTEXT");
    assert!(logs.contains("FILE_PLAINTEXT is for development only"));
    assert!(!dir.path().join(".auth_encryption_key").exists());
}

fn user(n: usize) -> UserCredentials {
    UserCredentials {
        uid: String::new(),
        issuer: "https://accounts.google.com".into(),
        sub: format!("10000{n}"),
        email: Some(format!("user{n}@example.org")),
        email_verified: true,
        tokens: UpstreamTokens {
            access_token: format!("ya29.access-{n}"),
            refresh_token: Some(format!("1//refresh-{n}")),
            expires_at: Some(1_900_000_000),
            scopes: vec!["openid".into(), "email".into()],
            id_token: None,
        },
        created_at: 1,
        updated_at: 2,
    }
}

fn metadata() -> ClientMetadata {
    ClientMetadata {
        client_name: Some("seeded".into()),
        redirect_uris: vec![
            drawbridge::domain::RedirectUri::parse("https://app.example/cb", &[]).unwrap(),
        ],
        grant_types: vec![GrantType::AuthorizationCode],
        scope: None,
        contacts: vec![],
        logo_uri: None,
        client_uri: None,
        policy_uri: None,
        tos_uri: None,
        auth_method: AuthMethod::ClientSecretPost,
        software_id: None,
        software_version: None,
        upstream_client_id: None,
        application_type: drawbridge::domain::ApplicationType::Web,
    }
}

/// Writes 3 users and 2 clients into `mode`'s store; returns the clients' ids and secrets.
fn seed(cfg: &Config) -> Vec<(String, String)> {
    let _lock = persistence::lock_dir(cfg).unwrap();
    let opened = persistence::open_mode(cfg, cfg.storage.mode, false, 1).unwrap();
    let policy = ExpiryPolicy {
        unused_seconds: 86400 * 365 * 100,
        idle_seconds: 86400,
    };
    let mut registry = RegistryCore::new(Owned::new(opened.store.clone()), policy, 100, true);
    let clients = (0..2)
        .map(|_| {
            let r = registry
                .register(RegisterClient {
                    metadata: metadata(),
                    origin: None,
                    now: drawbridge::clock::Clock::System.now(),
                })
                .unwrap();
            (
                r.client.client_id.to_string(),
                r.client_secret.unwrap().expose().to_owned(),
            )
        })
        .collect();
    let mut vault = opened.vault_core(true);
    for n in 0..3 {
        vault.store_user(user(n)).unwrap();
    }
    vault
        .seal_secret("upstream_client", "mcp_seed", b"custom-secret")
        .unwrap();
    clients
}

/// Opens `cfg`'s store and checks every seeded record reads back.
fn verify(cfg: &Config, clients: &[(String, String)]) {
    let _lock = persistence::lock_dir(cfg).unwrap();
    let opened = persistence::open_mode(cfg, cfg.storage.mode, true, 1).unwrap();
    let policy = ExpiryPolicy {
        unused_seconds: 86400 * 365 * 100,
        idle_seconds: 86400,
    };
    let registry = RegistryCore::new(Owned::new(opened.store.clone()), policy, 100, true);
    for (id, secret) in clients {
        let auth = AuthenticateClient {
            client_id: drawbridge::domain::ClientId::stored(id.clone()),
            method: AuthMethod::ClientSecretPost,
            secret: Some(SecretToken::presented(secret.as_str())),
            now: drawbridge::clock::Clock::System.now(),
        };
        assert!(
            registry.reader().read(auth).is_ok(),
            "{} client {id}",
            cfg.storage.mode.as_str()
        );
    }
    // Read as the HTTP side reads: through the Vault's reader.
    let vault = opened.vault_core(true).reader();
    for n in 0..3 {
        let got = vault
            .load_user(&UserRef::Subject {
                issuer: "https://accounts.google.com".into(),
                sub: format!("10000{n}"),
            })
            .unwrap()
            .expect("user kept");
        assert_eq!(
            vault
                .users_by_email(&format!("user{n}@example.org"))
                .unwrap(),
            vec![got.clone()]
        );
        assert!(got.uid.starts_with("u_"), "a user id is assigned");
        let without_id = UserCredentials {
            uid: String::new(),
            ..got
        };
        assert_eq!(without_id, user(n), "{}", cfg.storage.mode.as_str());
    }
    assert_eq!(
        vault
            .open_secret("upstream_client", "mcp_seed")
            .unwrap()
            .as_deref(),
        Some(&b"custom-secret"[..])
    );
}

fn migrate(dir: &Path, from: &str, to: &str) -> String {
    let out = drawbridge(dir, &[("CREDENTIALS_DIR", "creds")])
        .args(["migrate-storage", "--from", from, "--to", to])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{from} -> {to}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn migration_plaintext_to_encrypted_to_plaintext_round_trips_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let clients = seed(&config(dir.path(), "FILE_PLAINTEXT"));

    let first = migrate(dir.path(), "FILE_PLAINTEXT", "FILE_ENCRYPTED");
    assert!(
        first.contains("total: 6 migrated, 0 skipped, 0 unreadable"),
        "{first}"
    );
    let again = migrate(dir.path(), "FILE_PLAINTEXT", "FILE_ENCRYPTED");
    assert!(
        again.contains("total: 0 migrated, 6 skipped, 0 unreadable"),
        "idempotent: {again}"
    );
    verify(&config(dir.path(), "FILE_ENCRYPTED"), &clients);
    // The source is kept as a backup until the operator removes it.
    assert!(dir.path().join("creds/drawbridge-plaintext.db").exists());
    std::fs::remove_dir_all(dir.path().join("creds/drawbridge-plaintext.db")).unwrap();

    let back = migrate(dir.path(), "FILE_ENCRYPTED", "FILE_PLAINTEXT");
    assert!(
        back.contains("total: 6 migrated, 0 skipped, 0 unreadable"),
        "{back}"
    );
    verify(&config(dir.path(), "FILE_PLAINTEXT"), &clients);
}

#[actix_web::test]
async fn migration_to_and_from_the_backup_snapshot_keeps_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let clients = seed(&config(dir.path(), "FILE_ENCRYPTED"));
    let out = migrate(dir.path(), "FILE_ENCRYPTED", "MEMORY_WITH_BACKUP");
    assert!(out.contains("total: 6 migrated"), "{out}");
    verify(&config(dir.path(), "MEMORY_WITH_BACKUP"), &clients);
    let server = start(
        dir.path(),
        &[
            ("CREDENTIALS_DIR", "creds"),
            ("CREDENTIAL_STORAGE_MODE", "MEMORY_WITH_BACKUP"),
        ],
    );
    let health = health(server.port).await;
    terminate(server);
    assert_eq!(health["proxy_clients"], 2);
    // …and back out of the snapshot.
    let out = migrate(dir.path(), "MEMORY_WITH_BACKUP", "FILE_PLAINTEXT");
    assert!(out.contains("total: 6 migrated"), "{out}");
    verify(&config(dir.path(), "FILE_PLAINTEXT"), &clients);
    let out = drawbridge(dir.path(), &[("CREDENTIALS_DIR", "creds")])
        .args([
            "migrate-storage",
            "--from",
            "MEMORY_ONLY",
            "--to",
            "FILE_ENCRYPTED",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[actix_web::test]
async fn rotate_key_reseals_everything_retires_the_old_key_and_refuses_while_serving() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "FILE_ENCRYPTED");
    let clients = seed(&cfg);
    let key_file = || std::fs::read_to_string(dir.path().join(".auth_encryption_key")).unwrap();
    let old: Value = serde_json::from_str(&key_file()).unwrap();
    let old_id = old["current"].as_str().unwrap().to_owned();

    let out = drawbridge(dir.path(), &[("CREDENTIALS_DIR", "creds")])
        .arg("rotate-key")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("re-sealed: 4 records"), "{stdout}");
    assert!(
        stdout.contains(&format!("retired keys: {old_id}")),
        "{stdout}"
    );
    let new: Value = serde_json::from_str(&key_file()).unwrap();
    assert_ne!(new["current"], old["current"]);
    assert_eq!(new["keys"].as_array().unwrap().len(), 1);
    verify(&cfg, &clients);

    let server = start(dir.path(), &[("CREDENTIALS_DIR", "creds")]);
    let busy = drawbridge(dir.path(), &[("CREDENTIALS_DIR", "creds")])
        .arg("rotate-key")
        .output()
        .unwrap();
    terminate(server);
    assert!(!busy.status.success());
    assert!(String::from_utf8_lossy(&busy.stderr).contains("in use by another Drawbridge process"));
}

#[actix_web::test]
async fn a_missing_key_file_next_to_sealed_data_stops_start_up_instead_of_making_a_new_key() {
    for mode in ["FILE_ENCRYPTED", "MEMORY_WITH_BACKUP"] {
        let dir = tempfile::tempdir().unwrap();
        let env = [
            ("CREDENTIALS_DIR", "creds"),
            ("CREDENTIAL_STORAGE_MODE", mode),
        ];
        let server = start(dir.path(), &env);
        let (id, token) = register(server.port).await;
        terminate(server);
        let key_path = dir.path().join(".auth_encryption_key");
        let key = std::fs::read(&key_path).unwrap();
        std::fs::remove_file(&key_path).unwrap();

        // Waited for with a deadline: started with a new key, it would serve.
        let mut child = drawbridge(dir.path(), &env)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                child.kill().unwrap();
                panic!("{mode}: started without its key file");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        assert_eq!(status.code(), Some(2), "{mode}: {stderr}");
        assert!(
            stderr.contains(".auth_encryption_key is missing")
                && stderr.contains("restore the key file"),
            "{mode}: {stderr}"
        );
        assert!(!key_path.exists(), "{mode}: no new key was made");

        // With the key back, every sealed record is readable again.
        std::fs::write(&key_path, key).unwrap();
        std::fs::set_permissions(
            &key_path,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let server = start(dir.path(), &env);
        assert_eq!(read_status(server.port, &id, &token).await, 200, "{mode}");
        terminate(server);
    }
}
