//! The sign-in is bound to the browser that approved it (a link approved in
//! one browser cannot be finished in another), what a client sends to the
//! authorization endpoint is bounded before it is stored, the Vault keeps no
//! secret of a finished sign-in or of a removed client, and a registration
//! whose secret the Vault refuses leaves no client behind.

use reqwest::redirect::Policy;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::fake_google::{self, Mode};
use crate::helpers::{captured_logs, remember_secret, TestApp, ADMIN_TOKEN};
use crate::login_flow::{consent_form, consent_page, setup, Client, Flow};

/// A browser that keeps cookies and stops at every redirect.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// A client without cookies that stops at every redirect.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

fn location(res: &reqwest::Response) -> String {
    res.headers()["location"].to_str().unwrap().to_owned()
}

fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn stats(app: &TestApp) -> Value {
    let res = app
        .client
        .get(app.url("/admin/v1/stats"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn sealed_secrets(app: &TestApp) -> u64 {
    stats(app).await["sealed_secrets"].as_u64().unwrap()
}

async fn pending_sign_ins(app: &TestApp) -> u64 {
    stats(app).await["pending_sign_ins"].as_u64().unwrap()
}

async fn run_janitor(app: &TestApp) {
    let res = app
        .client
        .post(app.url("/admin/v1/janitor/run"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

/// In `browser`: the authorization request and the Approve answer; returns
/// the consent answer (a redirect to Google) and the PKCE verifier.
async fn approve_in(f: &Flow, browser: &reqwest::Client, client: &Client) -> reqwest::Response {
    let (_, challenge) = crate::login_flow::pkce();
    let page = consent_page(
        browser,
        &f.app.address,
        &client.id,
        &client.redirect,
        &challenge,
        Some("attacker-state"),
    )
    .await;
    let form = consent_form(&page, "approve");
    let answer = browser
        .post(f.app.url("/oauth/consent"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 302);
    assert!(location(&answer).starts_with(&f.google.url));
    answer
}

/// Follows the sign-in link to Google and back to Drawbridge's callback in
/// `browser` (with `cookie`, if given); answers the callback's response.
async fn finish_in(
    f: &Flow,
    browser: &reqwest::Client,
    google_url: &str,
    cookie: Option<String>,
) -> reqwest::Response {
    let at_google = browser.get(google_url).send().await.unwrap();
    assert_eq!(at_google.status(), 302);
    let callback = location(&at_google);
    assert!(callback.starts_with(&f.app.url("/oauth/callback")));
    if let Some(code) = query_param(&callback, "code") {
        remember_secret(&code);
    }
    let mut req = browser.get(&callback);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    req.send().await.unwrap()
}

/// The binding cookie's name for a sign-in, from its state (as the server
/// derives it; on plain http there is no `__Host-` prefix).
fn binding_name(google_url: &str) -> String {
    let state = query_param(google_url, "state").unwrap();
    let hash = Sha256::digest(state.as_bytes());
    let hex: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("drawbridge_signin_{hex}")
}

fn assert_refused_without_a_code(res: &reqwest::Response) {
    assert_eq!(res.status(), 403, "the callback from another browser");
    assert!(
        res.headers().get("location").is_none(),
        "nothing is sent to the client's redirect URI"
    );
}

#[actix_web::test]
async fn a_sign_in_link_approved_by_an_attacker_and_opened_by_a_victim_gives_the_attacker_nothing()
{
    let f = setup(&[]).await;
    // The attacker's own client, with the attacker's redirect URI.
    let attacker_client = f.register("none").await;
    let attacker = browser();
    let consent = approve_in(&f, &attacker, &attacker_client).await;
    let sign_in_link = location(&consent);

    // The victim's browser never saw Drawbridge: it has no cookie at all.
    let victim = browser();
    let res = finish_in(&f, &victim, &sign_in_link, None).await;
    assert_refused_without_a_code(&res);
    let page = res.text().await.unwrap();
    assert!(page.contains("another browser"), "{page}");
    assert!(
        f.google.with(|s| s.exchanges.is_empty()),
        "the victim's Google code was never redeemed"
    );

    // The refused sign-in is used up: not even the approving browser can
    // finish it now.
    let state = query_param(&sign_in_link, "state").unwrap();
    let replay = attacker
        .get(f.app.url("/oauth/callback"))
        .query(&[("code", "4/fake-google-code-1"), ("state", state.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 400);
    assert!(replay.headers().get("location").is_none());
    assert_eq!(pending_sign_ins(&f.app).await, 0);
    assert_eq!(
        sealed_secrets(&f.app).await,
        0,
        "the refused sign-in's verifier is gone"
    );

    // Audited and counted.
    let logs = captured_logs();
    assert!(logs.lines().any(|l| l.contains("upstream_callback")
        && l.contains("browser_mismatch")
        && l.contains(&attacker_client.id)));
    let metrics = f.app.metrics().await;
    assert!(
        metrics.contains("drawbridge_upstream_callbacks_total{outcome=\"browser_mismatch\"}"),
        "no browser_mismatch outcome in /metrics"
    );
}

#[actix_web::test]
async fn a_callback_with_a_wrong_binding_cookie_is_refused() {
    let f = setup(&[]).await;
    let client = f.register("none").await;
    let attacker = browser();
    let consent = approve_in(&f, &attacker, &client).await;
    let link = location(&consent);
    // The right cookie name with a value of the attacker's choosing.
    let forged = format!("{}={}", binding_name(&link), "A".repeat(43));
    let res = finish_in(&f, &no_redirects(), &link, Some(forged)).await;
    assert_refused_without_a_code(&res);
    assert!(f.google.with(|s| s.exchanges.is_empty()));
}

#[actix_web::test]
async fn the_approving_browser_gets_an_http_only_lax_binding_cookie_that_the_callback_clears() {
    let f = setup(&[]).await;
    let client = f.register("none").await;
    let one = browser();
    let consent = approve_in(&f, &one, &client).await;
    let link = location(&consent);
    let name = binding_name(&link);
    let set: Vec<String> = consent
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let binding = set
        .iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no binding cookie in {set:?}"));
    remember_secret(
        binding
            .split(';')
            .next()
            .unwrap()
            .split('=')
            .nth(1)
            .unwrap(),
    );
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=600"] {
        assert!(
            binding.split("; ").any(|a| a == attribute),
            "{attribute} missing: {binding}"
        );
    }
    assert!(!binding.contains("Secure"), "plain http: {binding}");
    // The same browser finishes the sign-in, and the cookie is cleared.
    let res = finish_in(&f, &one, &link, None).await;
    assert_eq!(res.status(), 302);
    let to_client = location(&res);
    assert!(to_client.starts_with(&client.redirect), "{to_client}");
    assert!(query_param(&to_client, "code").is_some());
    let cleared = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with(&format!("{name}=")))
        .expect("the callback clears the binding cookie");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(sealed_secrets(&f.app).await, 0, "no verifier left behind");
}

#[actix_web::test]
async fn on_https_the_binding_cookie_is_a_secure_host_prefixed_cookie() {
    let f = setup(&[("BASE_URL", "https://drawbridge.example")]).await;
    let client = f.register("none").await;
    let consent = approve_in(&f, &browser(), &client).await;
    let link = location(&consent);
    let name = format!("__Host-{}", binding_name(&link));
    let binding = consent
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with(&format!("{name}=")))
        .expect("a __Host- binding cookie");
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(
            binding.split("; ").any(|a| a == attribute),
            "{attribute} missing: {binding}"
        );
    }
    assert!(!binding.contains("Domain"), "{binding}");
}

#[actix_web::test]
async fn an_oversized_state_is_answered_invalid_request_at_the_redirect_uri_and_nothing_is_stored()
{
    let f = setup(&[]).await;
    let client = f.register("none").await;
    let (res, _) = f.authorize(&client, &[("state", &"s".repeat(2000))]).await;
    // The flow's browser follows redirects: it lands at the client.
    assert_eq!(res.url().path(), "/client/callback");
    let q: Value = res.json().await.unwrap();
    assert_eq!(q["error"], "invalid_request");
    assert!(
        q.get("state").is_none(),
        "the huge state is not echoed: {q}"
    );
    // A state at the limit is fine.
    let (res, _) = f.authorize(&client, &[("state", &"s".repeat(1024))]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(pending_sign_ins(&f.app).await, 1);
    // An oversized resource (this server's, padded with slashes).
    let padded = format!("{}{}", f.app.config.resource(), "/".repeat(2000));
    let (res, _) = f.authorize(&client, &[("resource", &padded)]).await;
    let q: Value = res.json().await.unwrap();
    assert_eq!(q["error"], "invalid_target");
    assert_eq!(pending_sign_ins(&f.app).await, 1);
}

#[actix_web::test]
async fn four_hundred_authorize_requests_with_a_60_kb_state_store_nothing() {
    // 400 at once from one address: over the per-address connection cap too.
    let f = setup(&[
        ("RATE_LIMIT_ENABLED", "false"),
        ("DRAWBRIDGE_SERVER__MAX_CONNECTIONS_PER_ADDRESS", "0"),
    ])
    .await;
    let client = f.register("none").await;
    let (_, challenge) = crate::login_flow::pkce();
    let huge = "x".repeat(60_000);
    let size_before = stats(&f.app).await["store_size_bytes"].as_u64().unwrap();
    let http = no_redirects();
    let requests = (0..400).map(|_| {
        http.get(f.app.url("/oauth/authorize"))
            .query(&[
                ("response_type", "code"),
                ("client_id", client.id.as_str()),
                ("redirect_uri", client.redirect.as_str()),
                ("state", huge.as_str()),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
            ])
            .send()
    });
    for res in futures_util::future::join_all(requests).await {
        let res = res.unwrap();
        assert_eq!(res.status(), 414);
        assert!(res.headers().get("location").is_none());
    }
    assert_eq!(pending_sign_ins(&f.app).await, 0);
    let size_after = stats(&f.app).await["store_size_bytes"].as_u64().unwrap();
    assert!(
        size_after < size_before + (1 << 20),
        "the store grew from {size_before} to {size_after} bytes"
    );
}

#[actix_web::test]
async fn a_finished_or_failed_sign_in_leaves_no_upstream_verifier_in_the_vault() {
    let f = setup(&[]).await;
    let client = f.register("none").await;
    assert_eq!(sealed_secrets(&f.app).await, 0);
    f.login(&client).await;
    assert_eq!(sealed_secrets(&f.app).await, 0, "after a sign-in");
    // The user declines at Google: the callback fails, the verifier goes too.
    f.google.set_mode(Mode::Deny);
    let (res, _) = f.authorize(&client, &[]).await;
    let page = res.text().await.unwrap();
    let landed = f.consent(&page, "approve").await;
    let q: Value = landed.json().await.unwrap();
    assert_eq!(q["error"], "access_denied");
    assert_eq!(sealed_secrets(&f.app).await, 0, "after a failed sign-in");
}

#[actix_web::test]
async fn the_janitor_deletes_the_verifiers_of_expired_sign_ins() {
    let f = setup(&[]).await;
    let client = f.register("none").await;
    // Approved, sent to Google, never came back.
    approve_in(&f, &browser(), &client).await;
    assert_eq!(sealed_secrets(&f.app).await, 1);
    assert_eq!(pending_sign_ins(&f.app).await, 1);
    run_janitor(&f.app).await;
    assert_eq!(sealed_secrets(&f.app).await, 1, "still pending: kept");
    f.app.clock.advance(f.app.config.tokens.transaction_ttl + 1);
    run_janitor(&f.app).await;
    assert_eq!(pending_sign_ins(&f.app).await, 0);
    assert_eq!(sealed_secrets(&f.app).await, 0);
}

async fn register_custom(f: &Flow) -> Value {
    let (status, reg) = f
        .app
        .register(&json!({
            "redirect_uris": [f.google.client_callback()],
            "token_endpoint_auth_method": "none",
            "upstream_client_id": fake_google::CUSTOM_CLIENT_ID,
            "upstream_client_secret": fake_google::CUSTOM_CLIENT_SECRET,
        }))
        .await;
    assert_eq!(status, 201, "{reg}");
    reg
}

#[actix_web::test]
async fn a_custom_upstream_secret_goes_with_its_client_deleted_revoked_or_expired() {
    let f = setup(&[("DRAWBRIDGE_OAUTH__ALLOW_CUSTOM_UPSTREAM_CLIENTS", "true")]).await;
    // Deleted by its owner (RFC 7592).
    let reg = register_custom(&f).await;
    assert_eq!(sealed_secrets(&f.app).await, 1);
    let id = reg["client_id"].as_str().unwrap();
    let token = reg["registration_access_token"].as_str().unwrap();
    let (status, _) = f
        .app
        .manage(reqwest::Method::DELETE, id, Some(token), None)
        .await;
    assert_eq!(status, 204);
    assert_eq!(sealed_secrets(&f.app).await, 0, "after an RFC 7592 delete");
    // Revoked by the operator.
    let reg = register_custom(&f).await;
    assert_eq!(sealed_secrets(&f.app).await, 1);
    let res = f
        .app
        .client
        .delete(f.app.url(&format!(
            "/admin/v1/clients/{}",
            reg["client_id"].as_str().unwrap()
        )))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(sealed_secrets(&f.app).await, 0, "after an admin revoke");
    // Never used, expired, purged by the janitor.
    register_custom(&f).await;
    assert_eq!(sealed_secrets(&f.app).await, 1);
    f.app.clock.advance(2 * 24 * 3600);
    run_janitor(&f.app).await;
    assert_eq!(stats(&f.app).await["clients"], 0);
    assert_eq!(sealed_secrets(&f.app).await, 0, "after expiry");
}

#[actix_web::test]
async fn a_registration_whose_upstream_secret_the_vault_refuses_leaves_no_client_behind() {
    let f = setup(&[("DRAWBRIDGE_OAUTH__ALLOW_CUSTOM_UPSTREAM_CLIENTS", "true")]).await;
    let before = f.app.client_count().await;
    let (status, body) = f
        .app
        .register(&json!({
            "redirect_uris": [f.google.client_callback()],
            "upstream_client_id": fake_google::CUSTOM_CLIENT_ID,
            "upstream_client_secret": "s".repeat(5000),
        }))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_client_metadata");
    assert!(body.get("client_id").is_none());
    assert_eq!(f.app.client_count().await, before, "no client was created");
    assert_eq!(stats(&f.app).await["clients"], before);
    assert_eq!(sealed_secrets(&f.app).await, 0);
    // An update bringing such a secret changes nothing either.
    let reg = register_custom(&f).await;
    let id = reg["client_id"].as_str().unwrap();
    let token = reg["registration_access_token"].as_str().unwrap();
    let update = json!({
        "client_id": id,
        "client_name": "renamed",
        "redirect_uris": [f.google.client_callback()],
        "token_endpoint_auth_method": "none",
        "upstream_client_id": fake_google::CUSTOM_CLIENT_ID,
        "upstream_client_secret": "s".repeat(5000),
    });
    let (status, body) = f
        .app
        .manage(reqwest::Method::PUT, id, Some(token), Some(&update))
        .await;
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("invalid_client_metadata"))
    );
    let (status, read) = f
        .app
        .manage(reqwest::Method::GET, id, Some(token), None)
        .await;
    assert_eq!(status, 200);
    assert!(
        read.get("client_name").is_none_or(|n| n.is_null()),
        "{read}"
    );
}

#[actix_web::test]
async fn the_janitor_deletes_verifiers_and_custom_secrets_whose_owners_are_gone_and_keeps_the_rest()
{
    use drawbridge::actors::vault::{UPSTREAM_CLIENT_SECRET, UPSTREAM_PKCE};
    // What an earlier release left behind: a verifier of a sign-in long
    // finished, and the custom secret of a client long deleted.
    let dir = tempfile::tempdir().unwrap();
    let google = fake_google::start();
    let mut vars = google.env();
    vars.push((
        "DRAWBRIDGE_OAUTH__ALLOW_CUSTOM_UPSTREAM_CLIENTS".into(),
        "true".into(),
    ));
    let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    {
        let config = crate::helpers::config_with(dir.path(), &refs);
        let opened = drawbridge::persistence::open_mode(
            &config,
            config.storage.mode,
            false,
            crate::helpers::T0,
        )
        .unwrap();
        let store = opened.store.clone();
        let mut vault = opened.vault_core(true);
        vault
            .seal_secret(UPSTREAM_PKCE, &"ab".repeat(32), b"an old verifier")
            .unwrap();
        vault
            .seal_secret(UPSTREAM_CLIENT_SECRET, "mcp_deleted_long_ago", b"old")
            .unwrap();
        store.flush().unwrap();
    }
    let app = crate::helpers::spawn_app_in(dir, &refs).await;
    let f = Flow::new(app, google);
    assert_eq!(sealed_secrets(&f.app).await, 2);
    // Live owners: a client with its own upstream secret, and a sign-in
    // approved and on its way through Google.
    let reg = register_custom(&f).await;
    let client = Client {
        id: reg["client_id"].as_str().unwrap().to_owned(),
        secret: None,
        redirect: f.google.client_callback(),
    };
    let approving = browser();
    let link = location(&approve_in(&f, &approving, &client).await);
    assert_eq!(sealed_secrets(&f.app).await, 4);
    run_janitor(&f.app).await;
    assert_eq!(
        sealed_secrets(&f.app).await,
        2,
        "the orphans went, the live ones stayed"
    );
    // The pending sign-in still completes, with its client's custom secret.
    let res = finish_in(&f, &approving, &link, None).await;
    assert_eq!(res.status(), 302);
    assert!(query_param(&location(&res), "code").is_some());
    assert_eq!(
        f.google
            .with(|s| (s.exchanges.len(), s.custom_without_secret)),
        (1, 0)
    );
}
