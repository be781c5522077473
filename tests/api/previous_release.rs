//! Data written by an earlier release keeps working: a data directory that
//! release wrote (committed under `tests/fixtures/`) is opened by this
//! binary; its client authenticates, its refresh token refreshes and its
//! user's Google tokens open.
//!
//! Every change of a stored record adds to this test; a release that
//! changes records adds a fixture of its own (write one with
//! `DRAWBRIDGE_WRITE_FIXTURE=tests/fixtures/data-<version> cargo test
//! --test api previous_release::write_a_fixture -- --ignored`).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::fake_google;
use crate::gateway::fake_mcp;
use crate::helpers::{remember_secret, spawn_app_in};
use crate::login_flow::{Client, Flow};

/// What the test needs to know about a fixture's contents.
#[derive(serde::Serialize, serde::Deserialize)]
struct Contents {
    release: String,
    client_id: String,
    client_secret: String,
    refresh_token: String,
    google_sub: String,
    google_access_token: String,
    google_refresh_token: String,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every fixture directory: `tests/fixtures/data-<release>/`.
fn every_fixture() -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("contents.json").is_file())
        .collect();
    all.sort();
    all
}

#[actix_web::test]
async fn a_data_directory_written_by_an_earlier_release_keeps_its_clients_tokens_and_users() {
    let all = every_fixture();
    assert!(!all.is_empty(), "no fixture under {}", fixtures().display());
    for fixture in all {
        let contents: Contents =
            serde_json::from_slice(&std::fs::read(fixture.join("contents.json")).unwrap()).unwrap();
        for secret in [
            &contents.client_secret,
            &contents.refresh_token,
            &contents.google_access_token,
            &contents.google_refresh_token,
        ] {
            remember_secret(secret);
        }
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&fixture.join("data"), dir.path());
        // Git keeps no permissions: restore the key file's owner-only mode,
        // as an operator restoring a backup would.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.path().join("encryption.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let google = fake_google::start();
        google.accept_refresh_token(&contents.google_refresh_token, &contents.google_sub);
        let upstream = fake_mcp();
        let mut vars = google.env();
        vars.push(("GATEWAY_UPSTREAM_URL".into(), upstream));
        let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let f = Flow::new(spawn_app_in(dir, &refs).await, google);
        let release = &contents.release;

        // The operator still sees the client.
        let (_, listed) = f.app.get_json_as_admin("/admin/v1/clients").await;
        assert!(
            listed.to_string().contains(&contents.client_id),
            "{release}: the client is not listed: {listed}"
        );
        // Fields added to the record since that release are filled in:
        // application_type (client record format 2) is inferred from the
        // redirect URIs (the fixture's is on loopback).
        let (status, detail) = f
            .app
            .get_json_as_admin(&format!("/admin/v1/clients/{}", contents.client_id))
            .await;
        assert_eq!(status, 200, "{release}: {detail}");
        assert_eq!(detail["application_type"], "native", "{release}: {detail}");

        // The client authenticates with its secret and its refresh token
        // refreshes.
        let client = Client {
            id: contents.client_id.clone(),
            secret: Some(contents.client_secret.clone()),
            redirect: String::new(),
        };
        let (status, tokens) = f.refresh(&client, &contents.refresh_token).await;
        assert_eq!(status, 200, "{release}: refresh refused: {tokens}");
        let wrong = Client {
            id: client.id.clone(),
            secret: Some(format!("{}x", contents.client_secret)),
            redirect: String::new(),
        };
        let (status, _) = f
            .refresh(&wrong, tokens["refresh_token"].as_str().unwrap())
            .await;
        assert_eq!(
            status, 401,
            "{release}: a wrong secret authenticated the client"
        );

        // The user's Google token opens: the gateway forwards it.
        let access = tokens["access_token"].as_str().unwrap();
        let seen = |body: Value| body["authorization"].as_str().map(str::to_owned);
        let call = || async {
            let res = f.gateway_ping(access).await;
            assert_eq!(res.status(), 200, "{release}: the gateway refused");
            res.json::<Value>().await.unwrap()
        };
        assert_eq!(
            seen(call().await),
            Some(format!("Bearer {}", contents.google_access_token)),
            "{release}: the stored Google access token did not reach the MCP server"
        );

        // Its Google refresh token opens too: once the Google token is
        // about to expire (it was issued for an hour at the fixture's
        // time), a refresh renews it at Google with the stored one — within
        // the refresh token's own idle hour.
        f.app.clock.advance(3600 - 30);
        let (status, tokens) = f
            .refresh(&client, tokens["refresh_token"].as_str().unwrap())
            .await;
        assert_eq!(
            status, 200,
            "{release}: refresh an hour later refused: {tokens}"
        );
        assert_eq!(
            f.google.with(|s| s.refreshes),
            1,
            "{release}: the stored Google refresh token was not used"
        );
    }
}

/// Writes a fixture of the current release (see the module comment).
#[actix_web::test]
#[ignore = "writes a fixture; run by hand when a release changes stored records"]
async fn write_a_fixture() {
    let out = PathBuf::from(
        std::env::var("DRAWBRIDGE_WRITE_FIXTURE").expect("DRAWBRIDGE_WRITE_FIXTURE=<directory>"),
    );
    let f = crate::login_flow::setup(&[("GATEWAY_UPSTREAM_URL", &fake_mcp())]).await;
    let client = f.register("client_secret_post").await;
    let login = f.login(&client).await;
    let (status, tokens) = f.exchange(&client, &login).await;
    assert_eq!(status, 200, "{tokens}");
    let issued = f.google.issued_tokens();
    assert_eq!(
        issued.len(),
        2,
        "one sign-in: one access and one refresh token"
    );
    let (google_refresh_token, google_access_token) = if issued[0].starts_with("1//") {
        (issued[0].clone(), issued[1].clone())
    } else {
        (issued[1].clone(), issued[0].clone())
    };
    let contents = Contents {
        release: env!("CARGO_PKG_VERSION").into(),
        client_id: client.id,
        client_secret: client.secret.unwrap(),
        refresh_token: tokens["refresh_token"].as_str().unwrap().into(),
        google_sub: fake_google::SUB.into(),
        google_access_token,
        google_refresh_token,
    };
    copy_dir(f.app.dir.path(), &out.join("data"));
    std::fs::write(
        out.join("contents.json"),
        serde_json::to_vec_pretty(&contents).unwrap(),
    )
    .unwrap();
}
