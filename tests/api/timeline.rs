//! A client's connection timeline (`GET /admin/v1/clients/{id}/timeline`),
//! read as an operator would after a sign-in that failed and one that
//! worked, and through `scripts/client-timeline.sh`.

use serde_json::{json, Value};

use crate::admin::script;
use crate::fake_google::EMAIL;
use crate::gateway::fake_mcp;
use crate::helpers::{spawn_app, spawn_app_in, start_stoppable, TestApp, ADMIN_TOKEN};
use crate::login_flow::{setup, Client, Flow};

/// The timeline of `client_id` as the admin API answers it.
async fn timeline(app: &TestApp, client_id: &str) -> (u16, Value) {
    let id = urlencoding(client_id);
    app.get_json_as_admin(&format!("/admin/v1/clients/{id}/timeline"))
        .await
}

/// Percent-encodes a path segment (a metadata document URL as a client id).
fn urlencoding(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `(step, outcome, error)` of every step, oldest first.
fn steps(body: &Value) -> Vec<(String, String, Option<String>)> {
    body["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("no steps in {body}"))
        .iter()
        .map(|s| {
            (
                s["step"].as_str().unwrap().to_owned(),
                s["outcome"].as_str().unwrap().to_owned(),
                s["error"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn step(name: &str, outcome: &str, error: Option<&str>) -> (String, String, Option<String>) {
    (name.into(), outcome.into(), error.map(str::to_owned))
}

/// The times of the steps never go back.
fn assert_in_time_order(body: &Value) {
    let times: Vec<i64> = body["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["at"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}

/// None of `secrets` appears anywhere in the timeline's JSON.
fn assert_holds_none_of(body: &Value, secrets: &[&str]) {
    let text = body.to_string();
    for secret in secrets {
        assert!(
            !text.contains(secret),
            "the timeline shows a secret ({secret}): {text}"
        );
    }
}

#[actix_web::test]
async fn a_failing_sign_in_shows_the_refusals_with_their_error_codes() {
    let f = setup(&[]).await;
    let client = f.register("none").await;

    // A plain PKCE challenge: refused at the client's redirect URI.
    let (res, _) = f
        .authorize(&client, &[("code_challenge_method", "plain")])
        .await;
    let q: Value = res.json().await.unwrap();
    assert_eq!(q["error"], "invalid_request", "{q}");
    // A redirect URI the client never registered: a page, no redirect.
    let evil = Client {
        redirect: "https://evil.example/steal".into(),
        id: client.id.clone(),
        secret: None,
    };
    let (res, _) = f.authorize(&evil, &[]).await;
    assert_eq!(res.status(), 400);
    // The consent page, denied.
    let (res, _) = f.authorize(&client, &[]).await;
    let page = res.text().await.unwrap();
    let state = crate::login_flow::hidden(&page, "state");
    let csrf = crate::login_flow::hidden(&page, "csrf");
    let landed = f.consent(&page, "deny").await;
    let q: Value = landed.json().await.unwrap();
    assert_eq!(q["error"], "access_denied");

    let (status, body) = timeline(&f.app, &client.id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        steps(&body),
        [
            step("registered", "ok", None),
            step("authorize", "error", Some("invalid_request")),
            step("authorize", "error", Some("invalid_request")),
            step("authorize", "ok", None),
            step("consent", "shown", None),
            step("consent", "denied", Some("access_denied")),
        ],
        "{body}"
    );
    assert_in_time_order(&body);
    let s = &body["steps"];
    assert!(
        s[1]["error_description"].as_str().unwrap().contains("S256"),
        "{body}"
    );
    assert!(s[1]["detail"].as_str().unwrap().contains("redirect host"));
    assert!(
        s[2]["error_description"]
            .as_str()
            .unwrap()
            .contains("not one the client registered"),
        "{body}"
    );
    assert_eq!(s[2]["detail"], "redirect host evil.example");
    assert_eq!(body["last_error"]["step"], "consent");
    assert_eq!(body["last_error"]["error"], "access_denied");
    assert_eq!(body["first_gateway_call_at"], Value::Null);
    assert_eq!(
        (body["max_steps"].as_u64(), body["kept_days"].as_i64()),
        (Some(50), Some(7))
    );
    assert_holds_none_of(&body, &[&state, &csrf, "client-state-123"]);
}

/// Signs `client` in and exchanges the code: the token response.
async fn signed_in(f: &Flow, client: &Client) -> Value {
    let login = f.login(client).await;
    let (status, tokens) = f.exchange(client, &login).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

#[actix_web::test]
async fn a_succeeding_sign_in_shows_every_step_up_to_the_gateway_and_no_secret() {
    let upstream = fake_mcp();
    let f = setup(&[("GATEWAY_UPSTREAM_URL", upstream.as_str())]).await;
    let client = f.register("client_secret_post").await;
    // A code exchange with the wrong PKCE verifier first: invalid_grant.
    let login = f.login(&client).await;
    let wrong = crate::login_flow::Login {
        code: login.code.clone(),
        verifier: "x".repeat(43),
    };
    let (status, body) = f.exchange(&client, &wrong).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let tokens = signed_in(&f, &client).await;
    let mut refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let mut access = String::new();
    for _ in 0..3 {
        let (status, next) = f.refresh(&client, &refresh).await;
        assert_eq!(status, 200, "{next}");
        refresh = next["refresh_token"].as_str().unwrap().to_owned();
        access = next["access_token"].as_str().unwrap().to_owned();
    }
    let started = f.app.clock.now();
    for _ in 0..3 {
        assert_eq!(f.gateway_ping(&access).await.status(), 200);
    }

    let (status, body) = timeline(&f.app, &client.id).await;
    assert_eq!(status, 200, "{body}");
    let signed_in_steps = [
        step("authorize", "ok", None),
        step("consent", "shown", None),
        step("consent", "approved", None),
        step("callback", "ok", None),
    ];
    let mut expected = vec![step("registered", "ok", None)];
    expected.extend(signed_in_steps.clone());
    expected.push(step("code_exchange", "error", Some("invalid_grant")));
    expected.extend(signed_in_steps);
    expected.extend([
        step("code_exchange", "ok", None),
        step("refresh", "ok", None),
        step("gateway_call", "ok", None),
    ]);
    assert_eq!(steps(&body), expected, "{body}");
    assert_in_time_order(&body);
    let all = body["steps"].as_array().unwrap();
    let refreshes = &all[all.len() - 2];
    assert_eq!(refreshes["count"], 3, "three refreshes are one entry");
    assert!(all[1]["detail"].as_str().unwrap().contains("scopes openid"));
    assert!(all[4]["detail"]
        .as_str()
        .unwrap()
        .starts_with("user sha256:"));
    assert_eq!(body["last_error"]["error"], "invalid_grant");
    assert_eq!(body["last_error"]["step"], "code_exchange");
    assert_eq!(body["first_gateway_call_at"], started);
    assert_eq!(body["last_gateway_call_at"], started);
    let secret = client.secret.clone().unwrap();
    let first_access = tokens["access_token"].as_str().unwrap();
    assert_holds_none_of(
        &body,
        &[
            &login.code,
            &login.verifier,
            &refresh,
            &access,
            first_access,
            &secret,
            EMAIL,
            "client-state-123",
        ],
    );

    // The last gateway call moves once the interval has passed, not before.
    f.app.clock.advance(30);
    f.gateway_ping(&access).await;
    let (_, body) = timeline(&f.app, &client.id).await;
    assert_eq!(body["last_gateway_call_at"], started);
    f.app.clock.advance(31);
    f.gateway_ping(&access).await;
    let (_, body) = timeline(&f.app, &client.id).await;
    assert_eq!(body["last_gateway_call_at"], started + 61);
    assert_eq!(body["first_gateway_call_at"], started);
    assert_eq!(
        steps(&body).len(),
        expected.len(),
        "later calls add no step"
    );
}

#[actix_web::test]
async fn a_reused_refresh_token_shows_as_invalid_grant_at_refresh() {
    let f = setup(&[]).await;
    let client = f.register("none").await;
    let tokens = signed_in(&f, &client).await;
    let old = tokens["refresh_token"].as_str().unwrap();
    let (status, _) = f.refresh(&client, old).await;
    assert_eq!(status, 200);
    f.app.clock.advance(120);
    let (status, body) = f.refresh(&client, old).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (_, body) = timeline(&f.app, &client.id).await;
    let all = steps(&body);
    assert_eq!(
        &all[all.len() - 2..],
        [
            step("refresh", "ok", None),
            step("refresh", "error", Some("invalid_grant"))
        ],
        "{body}"
    );
    assert_eq!(body["last_error"]["step"], "refresh");
}

#[actix_web::test]
async fn the_timeline_needs_the_admin_token_and_a_known_client() {
    let app = spawn_app().await;
    let registered = app.register_ok().await;
    let id = registered["client_id"].as_str().unwrap();
    let path = format!("/admin/v1/clients/{id}/timeline");
    let res = app.client.get(app.url(&path)).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let res = app
        .client
        .get(app.url(&path))
        .bearer_auth("wrong-token-0123456789abcdef")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    for unknown in [
        "mcp_AAAAAAAAAAAAAAAAAAAAAA",
        "not-a-client-id",
        "https://client.example/metadata.json",
    ] {
        let (status, body) = timeline(&app, unknown).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (404, Some("not_found")),
            "{unknown}"
        );
    }
    // Deleted with its client.
    let (status, _) = timeline(&app, id).await;
    assert_eq!(status, 200);
    let res = app
        .client
        .delete(app.url(&format!("/admin/v1/clients/{id}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (status, _) = timeline(&app, id).await;
    assert_eq!(status, 404);
}

#[actix_web::test]
async fn the_timeline_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (app, stop) = start_stoppable(dir, &[]).await;
    let registered = app.register_ok().await;
    let id = registered["client_id"].as_str().unwrap().to_owned();
    let (_, before) = timeline(&app, &id).await;
    assert_eq!(steps(&before), [step("registered", "ok", None)]);
    // Stopped, its data directory copied (this process still holds the
    // store it opened), and started again on the copy.
    stop.stop().await;
    let copy = tempfile::tempdir().unwrap();
    for name in ["credentials", "encryption.key", "test-database-url"] {
        if !app.dir.path().join(name).exists() {
            continue; // the database of a PostgreSQL run, or sled's directory
        }
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(app.dir.path().join(name))
            .arg(copy.path().join(name))
            .status()
            .unwrap();
        assert!(status.success());
    }
    let app = spawn_app_in(copy, &[]).await;
    let (status, after) = timeline(&app, &id).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["steps"], before["steps"]);
}

#[actix_web::test]
async fn client_timeline_sh_prints_one_line_per_step() {
    let f = setup(&[]).await;
    let client = f.register("none").await;
    let (res, _) = f.authorize(&client, &[]).await;
    let page = res.text().await.unwrap();
    f.consent(&page, "deny").await;
    let out = script(&f.app, &format!("scripts/client-timeline.sh {}", client.id)).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    let denied = lines
        .iter()
        .find(|l| l.contains("consent") && l.contains("denied"))
        .unwrap_or_else(|| panic!("no denied consent in:\n{text}"));
    assert!(denied.contains("access_denied"), "{text}");
    assert!(
        denied.starts_with("20"),
        "a readable UTC time first: {denied}"
    );
    assert!(lines.iter().any(|l| l.contains("registered")), "{text}");
    assert!(text.contains("last error"), "{text}");
    // A URL client id is percent-encoded; an unknown one is a clear failure.
    let missing = script(
        &f.app,
        "scripts/client-timeline.sh https://client.example/metadata.json",
    )
    .await;
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("HTTP 404"));
    let help = script(&f.app, "scripts/client-timeline.sh --help").await;
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("Usage:"));
    let json_out = script(
        &f.app,
        &format!("scripts/client-timeline.sh --json {}", client.id),
    )
    .await;
    let parsed: Value = serde_json::from_slice(&json_out.stdout).unwrap_or(json!(null));
    assert_eq!(parsed["client_id"], client.id.as_str());
}

#[actix_web::test]
async fn a_disabled_client_shows_its_refusals_at_the_gateway_and_at_sign_in() {
    let upstream = fake_mcp();
    let f = setup(&[("GATEWAY_UPSTREAM_URL", upstream.as_str())]).await;
    let client = f.register("none").await;
    let tokens = signed_in(&f, &client).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(f.gateway_ping(access).await.status(), 200);
    let res = f
        .app
        .client
        .post(
            f.app
                .url(&format!("/admin/v1/clients/{}/disable", client.id)),
        )
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(f.gateway_ping(access).await.status(), 401);
    let (res, _) = f.authorize(&client, &[]).await;
    assert_ne!(res.status(), 200, "no consent page for a disabled client");

    let (_, body) = timeline(&f.app, &client.id).await;
    let all = steps(&body);
    assert_eq!(
        &all[all.len() - 3..],
        [
            step("gateway_call", "ok", None),
            step("gateway_call", "error", Some("invalid_token")),
            step("authorize", "error", Some("invalid_client")),
        ],
        "{body}"
    );
    let s = body["steps"].as_array().unwrap();
    let gateway = &s[s.len() - 2];
    assert!(
        gateway["error_description"]
            .as_str()
            .unwrap()
            .contains("disabled"),
        "{body}"
    );
    assert_eq!(body["last_error"]["error"], "invalid_client");
}

#[actix_web::test]
async fn a_metadata_document_client_has_a_timeline_under_its_url() {
    let flow = crate::cimd_signin::flow_with(&[]).await;
    let (_host, client) = crate::cimd_signin::document_client(&flow, "Documented").await;
    let login = flow.login(&client).await;
    let (status, tokens) = flow.exchange(&client, &login).await;
    assert_eq!(status, 200, "{tokens}");

    let (status, body) = timeline(&flow.app, &client.id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["client_id"], client.id.as_str());
    assert_eq!(
        steps(&body),
        [
            step("registered", "ok", None),
            step("authorize", "ok", None),
            step("consent", "shown", None),
            step("consent", "approved", None),
            step("callback", "ok", None),
            step("code_exchange", "ok", None),
        ],
        "{body}"
    );
    assert_eq!(body["steps"][0]["detail"], "metadata document admitted");
    // The script percent-encodes the URL itself.
    let out = script(
        &flow.app,
        &format!("scripts/client-timeline.sh '{}'", client.id),
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("metadata document admitted"), "{text}");
    assert!(text.contains("code_exchange"), "{text}");
}

#[actix_web::test]
async fn a_tool_call_refused_for_a_missing_scope_shows_as_insufficient_scope() {
    let upstream = fake_mcp();
    let f = setup(&[
        ("GATEWAY_UPSTREAM_URL", upstream.as_str()),
        ("GOOGLE_OAUTH_SCOPES", "openid email profile gmail.send"),
        ("DRAWBRIDGE_OAUTH__DEFAULT_SCOPES", "openid email profile"),
        ("DRAWBRIDGE_GATEWAY__TOOL_SCOPES", "send_email=gmail.send"),
    ])
    .await;
    let client = f.register("none").await;
    let tokens = signed_in(&f, &client).await;
    let access = tokens["access_token"].as_str().unwrap();
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "send_email", "arguments": {}}});
    for _ in 0..2 {
        let res = f
            .app
            .client
            .post(f.app.url("/mcp"))
            .bearer_auth(access)
            .json(&call)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
    }
    let (_, body) = timeline(&f.app, &client.id).await;
    let all = steps(&body);
    assert_eq!(
        all.last().unwrap(),
        &step("gateway_call", "error", Some("insufficient_scope")),
        "{body}"
    );
    let last = body["steps"].as_array().unwrap().last().unwrap().clone();
    assert!(
        last["error_description"]
            .as_str()
            .unwrap()
            .contains("gmail.send"),
        "{body}"
    );
    assert_eq!(last["count"], 1, "written once per interval: {body}");
}
