//! Backups as docs/deploy.md tells operators to take them: stop the
//! service (it flushes storage on the way out), copy the data directory with
//! `cp -a`, start again; the key file is copied on its own. A copy of a live
//! sled directory is not a consistent backup (its files change while they
//! are read), so the test stops the instance first, exactly as the
//! procedure does, then starts a NEW instance on the copy and checks that
//! clients, users and tokens all came across.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::fake_google::{self, EMAIL, SUB};
use crate::gateway::fake_mcp;
use crate::helpers::{spawn_app_in, start_stoppable};
use crate::login_flow::{Client, Flow, INTROSPECTION_SECRET};

/// `cp -a FROM TO`, as the operator runs it (keeps modes and times).
fn cp_a(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp runs");
    assert!(
        status.success(),
        "cp -a {} {}",
        from.display(),
        to.display()
    );
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// What the gateway forwards for `access`: the user's Google token and who
/// they are (the vault opened the user's record with the restored key).
async fn through_gateway(f: &Flow, access: &str) -> Value {
    let res = f.gateway_ping(access).await;
    assert_eq!(res.status(), 200, "the gateway refused the restored token");
    res.json().await.unwrap()
}

#[actix_web::test]
async fn a_data_directory_copied_after_a_stop_restores_into_a_new_instance_with_its_clients_users_and_tokens(
) {
    let google = fake_google::start();
    let upstream = fake_mcp();
    let mut vars = google.env();
    vars.push(("GATEWAY_UPSTREAM_URL".into(), upstream));
    vars.push((
        "DRAWBRIDGE_OAUTH__INTROSPECTION_SECRET".into(),
        INTROSPECTION_SECRET.into(),
    ));
    let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();

    // The running instance: two registered clients, one of them signed in.
    let (app, stoppable) = start_stoppable(tempfile::tempdir().unwrap(), &refs).await;
    let f = Flow::new(app, google);
    let client = f.register("client_secret_post").await;
    let other = f.register("none").await;
    let login = f.login(&client).await;
    let (status, tokens) = f.exchange(&client, &login).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let google_token = through_gateway(&f, &access).await["authorization"].clone();
    assert!(google_token.is_string(), "{google_token}");

    // The procedure: stop, copy the data directory, copy the key file.
    stoppable.stop().await;
    let old = f.app.dir.path();
    let backup = tempfile::tempdir().unwrap();
    cp_a(&old.join("credentials"), &backup.path().join("credentials"));
    cp_a(
        &old.join("encryption.key"),
        &backup.path().join("encryption.key"),
    );
    assert_eq!(mode(&backup.path().join("credentials")), 0o700);
    assert_eq!(mode(&backup.path().join("encryption.key")), 0o600);

    // The restore: a new instance (new directory, new port) on the copy.
    let Flow { google, .. } = f;
    let f = Flow::new(spawn_app_in(backup, &refs).await, google);

    // The operator's view: both clients and the user, all readable.
    let (status, listed) = f.app.get_json_as_admin("/admin/v1/clients").await;
    assert_eq!(status, 200, "{listed}");
    for id in [&client.id, &other.id] {
        assert!(
            listed.to_string().contains(id.as_str()),
            "client {id} was lost in the restore: {listed}"
        );
    }
    let (status, users) = f.app.get_json_as_admin("/admin/v1/users").await;
    assert_eq!(status, 200, "{users}");
    assert_eq!(users["unreadable"], 0, "{users}");
    let user = users["users"]
        .as_array()
        .and_then(|all| all.iter().find(|u| u["sub"] == SUB))
        .unwrap_or_else(|| panic!("the signed-in user was lost in the restore: {users}"));
    assert_eq!(user["email"], EMAIL, "{user}");

    // The access token issued before the backup is still active, and the
    // gateway still forwards the user's Google token (the key opened it).
    assert_eq!(f.introspect(&access).await["active"], true);
    let seen = through_gateway(&f, &access).await;
    assert_eq!(seen["authorization"], google_token, "{seen}");
    assert_eq!(seen["user"], EMAIL, "{seen}");

    // The client authenticates at the token endpoint: its refresh token
    // refreshes with its secret, and a wrong secret is refused.
    let wrong = Client {
        id: client.id.clone(),
        secret: Some(format!("{}x", client.secret.as_deref().unwrap())),
        redirect: client.redirect.clone(),
    };
    let (status, body) = f.refresh(&wrong, &refresh).await;
    assert_eq!(status, 401, "a wrong secret authenticated: {body}");
    let (status, renewed) = f.refresh(&client, &refresh).await;
    assert_eq!(
        status, 200,
        "the restored refresh token was refused: {renewed}"
    );
    assert_eq!(
        f.introspect(renewed["access_token"].as_str().unwrap())
            .await["active"],
        true
    );

    // And the restored instance keeps working: the other client signs in.
    let login = f.login(&other).await;
    let (status, body) = f.exchange(&other, &login).await;
    assert_eq!(status, 200, "a sign-in on the restored instance: {body}");
}
