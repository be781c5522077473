//! Who may sign in (`[access]`), driven as a person in a browser, an MCP
//! client and an operator would: the refusal page, nothing stored, the
//! Workspace `hd` claim and hint, and a user taken off the allowed file
//! (SIGHUP) losing the gateway and refreshes on their next request.

use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::redirect::Policy;
use serde_json::{json, Value};

use crate::binary::{start, terminate};
use crate::fake_google::{self, FakeGoogle};
use crate::gateway::fake_mcp;
use crate::helpers::{captured_logs, ADMIN_TOKEN};
use crate::login_flow::{consent_form, pkce, setup, Flow};

/// The value of a counter sample of `/metrics`, 0 when absent.
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Signs the fake's current user in from a new client; answers the page
/// the browser ends on (the client's callback, or Drawbridge's refusal).
async fn try_sign_in(f: &Flow) -> reqwest::Response {
    let client = f.register("client_secret_post").await;
    let (res, _) = f.authorize(&client, &[]).await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    f.consent(&page, "approve").await
}

/// Asserts the browser got the refusal page, saying `why`, and no code.
async fn refused(landed: reqwest::Response, why: &str) -> String {
    assert_eq!(landed.status(), 403);
    assert_eq!(
        landed.url().path(),
        "/oauth/callback",
        "not sent to the client"
    );
    let page = landed.text().await.unwrap();
    assert!(page.contains(why), "{page}");
    assert!(!page.contains("code="), "{page}");
    page
}

async fn users(f: &Flow) -> Vec<Value> {
    let (status, body) = f.app.get_json_as_admin("/admin/v1/users").await;
    assert_eq!(status, 200, "{body}");
    body["users"].as_array().unwrap().clone()
}

#[actix_web::test]
async fn a_person_outside_the_allowed_domains_sees_why_and_nothing_is_kept_for_them() {
    let f = setup(&[(
        "DRAWBRIDGE_ACCESS__ALLOWED_DOMAINS",
        "example.com,example.net",
    )])
    .await;
    f.google
        .set_user("200000000001", "mallory@elsewhere.org", Some(json!(true)));
    let page = refused(
        try_sign_in(&f).await,
        "this account is not on the list of accounts allowed to use this service",
    )
    .await;
    assert!(
        !page.contains("example.com") && !page.contains("example.net"),
        "the page does not reveal the list: {page}"
    );
    assert!(
        users(&f).await.is_empty(),
        "nothing stored for a refused person"
    );
    let (_, stats) = f.app.get_json_as_admin("/admin/v1/stats").await;
    assert_eq!(stats["grants"], 0, "{stats}");
    let logs = captured_logs();
    assert!(
        logs.lines()
            .any(|l| l.contains("\"event_type\":\"signin_refused\"")
                && l.contains("\"reason\":\"not_allowed\"")),
        "audit event"
    );
    let metrics = f.app.metrics().await;
    let series = "drawbridge_access_refused_total{reason=\"not_allowed\",stage=\"signin\"}";
    assert!(sample(&metrics, series) >= 1.0, "{metrics}");

    // Someone on an allowed domain signs in as before.
    f.google
        .set_user("200000000002", "ada@example.net", Some(json!(true)));
    let landed = try_sign_in(&f).await;
    assert_eq!(landed.url().path(), "/client/callback");
    let q: Value = landed.json().await.unwrap();
    assert!(q["code"].is_string(), "{q}");
    let users = users(&f).await;
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["email"], "ada@example.net");
}

#[actix_web::test]
async fn a_denied_address_is_refused_even_on_an_allowed_domain_and_an_unverified_one_always() {
    let f = setup(&[
        ("DRAWBRIDGE_ACCESS__ALLOWED_DOMAINS", "example.com"),
        ("DRAWBRIDGE_ACCESS__DENIED_EMAILS", "Eve@Example.com"),
    ])
    .await;
    f.google
        .set_user("200000000003", "eve@example.com", Some(json!(true)));
    refused(
        try_sign_in(&f).await,
        "this account is not allowed to use this service",
    )
    .await;
    f.google
        .set_user("200000000004", "bob@example.com", Some(json!(false)));
    refused(
        try_sign_in(&f).await,
        "this service needs an account with a verified email address",
    )
    .await;
    assert!(users(&f).await.is_empty());
    let logs = captured_logs();
    assert!(logs
        .lines()
        .any(|l| l.contains("\"event_type\":\"signin_refused\"")
            && l.contains("\"reason\":\"denied\"")));
    assert!(logs
        .lines()
        .any(|l| l.contains("\"event_type\":\"signin_refused\"")
            && l.contains("\"reason\":\"no_verified_email\"")));
}

#[actix_web::test]
async fn a_workspace_domain_is_hinted_to_google_and_admits_its_accounts_by_the_hd_claim() {
    let mcp = fake_mcp();
    let f = setup(&[
        (
            "DRAWBRIDGE_ACCESS__GOOGLE_WORKSPACE_DOMAINS",
            "corp.example",
        ),
        ("GATEWAY_UPSTREAM_URL", mcp.as_str()),
    ])
    .await;
    // The same address without the Workspace claim (a consumer account
    // that happens to use the domain) is not enough.
    f.google
        .set_user("200000000005", "ada@corp.example", Some(json!(true)));
    refused(
        try_sign_in(&f).await,
        "this account is not on the list of accounts allowed to use this service",
    )
    .await;
    let hint = f.google.with(|s| s.last_authorize_hd.clone());
    assert_eq!(hint.as_deref(), Some("corp.example"), "hd hint sent");

    f.google
        .set_workspace_user("200000000006", "ada@corp.example", "corp.example");
    let client = f.register("client_secret_post").await;
    let login = f.login(&client).await;
    let (status, tokens) = f.exchange(&client, &login).await;
    assert_eq!(status, 200, "{tokens}");
    // At the gateway the claim is read back from the stored ID token.
    let res = f
        .gateway_ping(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(res.status(), 200);
    let (status, refreshed) = f
        .refresh(&client, tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, 200, "{refreshed}");

    let (status, policy) = f.app.get_json_as_admin("/admin/v1/access").await;
    assert_eq!(status, 200);
    assert_eq!(policy["open"], false);
    assert_eq!(policy["hd_hint"], "corp.example");
    assert_eq!(
        policy["google_workspace_domains"]["entries"],
        json!(["corp.example"])
    );
    assert_eq!(policy["allowed_emails"]["count"], 0);
}

#[actix_web::test]
async fn with_no_lists_anyone_signs_in_and_no_hint_is_sent() {
    let f = setup(&[]).await;
    let landed = try_sign_in(&f).await;
    assert_eq!(landed.url().path(), "/client/callback");
    assert_eq!(f.google.with(|s| s.last_authorize_hd.clone()), None);
    let (_, policy) = f.app.get_json_as_admin("/admin/v1/access").await;
    assert_eq!(policy["open"], true, "{policy}");
    let (status, _) = f.app.get_json("/admin/v1/access").await;
    assert_eq!(status, 401, "the policy is for the operator only");
}

/// The binary's server, with the fake Google, a fake MCP server and an
/// allowed-addresses file.
struct Operated {
    base: String,
    google: FakeGoogle,
    api: reqwest::Client,
}

impl Operated {
    async fn admin_access(&self) -> Value {
        let res = self
            .api
            .get(format!("{}/admin/v1/access", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }

    /// Registration, sign-in in a browser and the code exchange.
    async fn sign_in(&self) -> (Value, Value) {
        let redirect = self.google.client_callback();
        let reg: Value = self
            .api
            .post(format!("{}/oauth/register", self.base))
            .json(&json!({"redirect_uris": [redirect], "grant_types": ["authorization_code", "refresh_token"]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let browser = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(Policy::limited(10))
            .build()
            .unwrap();
        let (verifier, challenge) = pkce();
        let id = reg["client_id"].as_str().unwrap();
        let page = browser
            .get(format!("{}/oauth/authorize", self.base))
            .query(&[
                ("response_type", "code"),
                ("client_id", id),
                ("redirect_uri", redirect.as_str()),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
            ])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let landed = browser
            .post(format!("{}/oauth/consent", self.base))
            .form(&consent_form(&page, "approve"))
            .send()
            .await
            .unwrap();
        let q: Value = landed.json().await.unwrap();
        let tokens = self
            .token(
                &reg,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", q["code"].as_str().unwrap()),
                    ("redirect_uri", &redirect),
                    ("code_verifier", &verifier),
                ],
            )
            .await;
        assert_eq!(tokens.0, 200, "{}", tokens.1);
        (reg, tokens.1)
    }

    async fn token(&self, reg: &Value, form: &[(&str, &str)]) -> (u16, Value) {
        let mut all = form.to_vec();
        all.push(("client_id", reg["client_id"].as_str().unwrap()));
        all.push(("client_secret", reg["client_secret"].as_str().unwrap()));
        let res = self
            .api
            .post(format!("{}/oauth/token", self.base))
            .form(&all)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn gateway(&self, access_token: &str) -> reqwest::Response {
        self.api
            .post(format!("{}/mcp", self.base))
            .bearer_auth(access_token)
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
            .send()
            .await
            .unwrap()
    }
}

fn hang_up(pid: u32) {
    let pid = pid.to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
}

#[actix_web::test]
async fn a_user_taken_off_the_allowed_file_loses_the_gateway_and_refresh_after_sighup() {
    let google = fake_google::start();
    let mcp = fake_mcp();
    let dir = tempfile::tempdir().unwrap();
    let allowed = dir.path().join("allowed-emails");
    std::fs::write(
        &allowed,
        "# staff\nada@example.com\nbob@example.com  # on call\n",
    )
    .unwrap();
    let mut env = google.env();
    for (k, v) in [
        ("CREDENTIAL_STORAGE_MODE", "MEMORY_ONLY"),
        ("DRAWBRIDGE_ADMIN_TOKEN", ADMIN_TOKEN),
        ("GATEWAY_UPSTREAM_URL", mcp.as_str()),
        (
            "DRAWBRIDGE_ACCESS__ALLOWED_EMAILS_FILE",
            allowed.to_str().unwrap(),
        ),
    ] {
        env.push((k.into(), v.into()));
    }
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = start(dir.path(), &refs);
    let op = Operated {
        base: format!("http://127.0.0.1:{}", server.port),
        google,
        api: reqwest::Client::new(),
    };
    let before = op.admin_access().await;
    assert_eq!(before["allowed_emails"]["count"], 2, "{before}");
    assert_eq!(before["allowed_emails"]["from_file"], 2);
    assert_eq!(before["allowed_emails"]["file"], allowed.to_str().unwrap());
    let (reg, tokens) = op.sign_in().await; // ada@example.com, the fake's default
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(op.gateway(access).await.status(), 200);

    // The operator takes Ada off the list and reloads.
    std::fs::write(&allowed, "bob@example.com\n").unwrap();
    hang_up(server.child.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    while op.admin_access().await["allowed_emails"]["count"] != 1 {
        assert!(Instant::now() < deadline, "the reload did not happen");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let res = op.gateway(access).await;
    assert_eq!(res.status(), 401);
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(challenge.contains("resource_metadata="), "{challenge}");
    let (status, body) = op
        .token(
            &reg,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );

    // A file with a mistake is refused; the lists in service stay.
    std::fs::write(&allowed, "bob@example.com\nnot an address\n").unwrap();
    hang_up(server.child.id());
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let after = op.admin_access().await;
    assert_eq!(
        after["allowed_emails"]["entries"],
        json!(["bob@example.com"])
    );

    // Put back on the list, the same tokens work again (the grant was kept).
    std::fs::write(&allowed, "ada@example.com\nbob@example.com\n").unwrap();
    hang_up(server.child.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    while op.admin_access().await["allowed_emails"]["count"] != 2 {
        assert!(Instant::now() < deadline, "the reload did not happen");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(op.gateway(access).await.status(), 200);
    let (status, body) = op
        .token(
            &reg,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let (code, logs) = terminate(server);
    assert_eq!(code, 0, "{logs}");
    assert!(logs.contains("access lists reloaded"), "{logs}");
    assert!(
        logs.contains("the access list files were refused; the lists in service stay"),
        "{logs}"
    );
    for stage in ["gateway", "refresh"] {
        assert!(
            logs.lines()
                .any(|l| l.contains("\"event_type\":\"access_refused\"")
                    && l.contains(&format!("\"stage\":\"{stage}\""))
                    && l.contains("\"reason\":\"not_allowed\"")
                    && l.contains("\"ip\":\"127.0.0.1\"")),
            "{stage} refusal audited:\n{logs}"
        );
    }
}
