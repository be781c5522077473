//! The whole sign-in, driven as an MCP client and a browser would, against
//! the fake Google in `fake_google.rs`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::redirect::Policy;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::fake_google::{self, FakeGoogle, Mode};
use crate::helpers::{captured_logs, spawn_app_with, TestApp};

pub struct Flow {
    pub app: TestApp,
    pub google: FakeGoogle,
    /// A browser: keeps cookies, follows redirects.
    pub browser: reqwest::Client,
}

pub struct Client {
    pub id: String,
    pub secret: Option<String>,
    pub redirect: String,
}

pub struct Login {
    pub code: String,
    pub verifier: String,
}

pub async fn setup(extra: &[(&str, &str)]) -> Flow {
    let google = fake_google::start();
    let mut vars: Vec<(String, String)> = google.env();
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Flow::new(spawn_app_with(&refs).await, google)
}

impl Flow {
    /// `app` with `google` as its upstream, and a browser that keeps
    /// cookies and follows redirects.
    pub fn new(app: TestApp, google: FakeGoogle) -> Self {
        let browser = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(Policy::limited(10))
            .pool_idle_timeout(crate::helpers::CLIENT_IDLE)
            .build()
            .unwrap();
        Flow {
            app,
            google,
            browser,
        }
    }

    pub async fn register(&self, method: &str) -> Client {
        self.register_with(json!({"token_endpoint_auth_method": method}))
            .await
    }

    pub async fn register_with(&self, extra: Value) -> Client {
        let mut body = json!({
            "client_name": "Test MCP client",
            "redirect_uris": [self.google.client_callback()],
            "grant_types": ["authorization_code", "refresh_token"],
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, reg) = self.app.register(&body).await;
        assert_eq!(status, 201, "{reg}");
        Client {
            id: reg["client_id"].as_str().unwrap().into(),
            secret: reg["client_secret"].as_str().map(str::to_owned),
            redirect: self.google.client_callback(),
        }
    }

    /// The authorization request with PKCE, as the browser opens it.
    pub async fn authorize(
        &self,
        client: &Client,
        extra: &[(&str, &str)],
    ) -> (reqwest::Response, String) {
        let (verifier, challenge) = pkce();
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", client.id.as_str()),
            ("redirect_uri", client.redirect.as_str()),
            ("state", "client-state-123"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        for (k, v) in extra {
            params.retain(|(pk, _)| pk != k);
            if !v.is_empty() {
                params.push((k, v));
            }
        }
        let res = self
            .browser
            .get(self.app.url("/oauth/authorize"))
            .query(&params)
            .send()
            .await
            .unwrap();
        (res, verifier)
    }

    /// Answers the consent page; the browser follows every redirect after it.
    pub async fn consent(&self, page: &str, decision: &str) -> reqwest::Response {
        let form = consent_form(page, decision);
        self.browser
            .post(self.app.url("/oauth/consent"))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    /// A complete sign-in: authorize, approve, upstream, back to the client.
    pub async fn login(&self, client: &Client) -> Login {
        let (res, verifier) = self.authorize(client, &[]).await;
        assert_eq!(res.status(), 200);
        let page = res.text().await.unwrap();
        let landed = self.consent(&page, "approve").await;
        assert_eq!(
            landed.url().path(),
            "/client/callback",
            "the browser ends at the client"
        );
        let q: Value = landed.json().await.unwrap();
        assert_eq!(q["state"], "client-state-123");
        assert_eq!(q["iss"], self.app.config.issuer());
        Login {
            code: q["code"]
                .as_str()
                .unwrap_or_else(|| panic!("no code: {q}"))
                .to_owned(),
            verifier,
        }
    }

    pub async fn token(&self, client: &Client, form: &[(&str, &str)]) -> (u16, Value) {
        let mut all: Vec<(&str, &str)> = form.to_vec();
        all.push(("client_id", &client.id));
        if let Some(s) = &client.secret {
            all.push(("client_secret", s));
        }
        let res = self
            .app
            .client
            .post(self.app.url("/oauth/token"))
            .form(&all)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        if status == 200 {
            assert_eq!(res.headers()["cache-control"], "no-store");
            assert_eq!(res.headers()["pragma"], "no-cache");
        }
        let body: Value = res.json().await.unwrap_or(Value::Null);
        for field in ["access_token", "refresh_token", "id_token"] {
            if let Some(s) = body[field].as_str() {
                crate::helpers::remember_secret(s);
            }
        }
        for (_, v) in form {
            if v.starts_with("mcp_code_") || v.len() >= 43 {
                crate::helpers::remember_secret(v);
            }
        }
        (status, body)
    }

    pub async fn exchange(&self, client: &Client, login: &Login) -> (u16, Value) {
        self.token(
            client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &login.code),
                ("redirect_uri", &client.redirect),
                ("code_verifier", &login.verifier),
            ],
        )
        .await
    }

    pub async fn refresh(&self, client: &Client, refresh_token: &str) -> (u16, Value) {
        self.token(
            client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    }

    /// An MCP `ping` through the gateway with `access_token`, as a client
    /// sends it.
    pub async fn gateway_ping(&self, access_token: &str) -> reqwest::Response {
        self.app
            .client
            .post(self.app.url("/mcp"))
            .bearer_auth(access_token)
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
            .send()
            .await
            .unwrap()
    }

    /// Introspection as a resource server (the configured secret).
    pub async fn introspect(&self, token: &str) -> Value {
        self.app
            .client
            .post(self.app.url("/oauth/introspect"))
            .bearer_auth(INTROSPECTION_SECRET)
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

pub const INTROSPECTION_SECRET: &str = "rs-introspection-secret-0123456789";

/// The consent page `browser` gets for an authorization request with
/// `client_id`, `redirect_uri`, PKCE `challenge`, and `state` when given.
pub async fn consent_page(
    browser: &reqwest::Client,
    base: &str,
    client_id: &str,
    redirect_uri: &str,
    challenge: &str,
    state: Option<&str>,
) -> String {
    let mut query = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    if let Some(state) = state {
        query.push(("state", state));
    }
    browser
        .get(format!("{base}/oauth/authorize"))
        .query(&query)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The consent form's fields, answering `decision` (`approve` or `deny`).
pub fn consent_form(page: &str, decision: &str) -> [(&'static str, String); 3] {
    [
        ("state", hidden(page, "state")),
        ("csrf", hidden(page, "csrf")),
        ("decision", decision.to_owned()),
    ]
}

pub fn hidden(page: &str, name: &str) -> String {
    field(page, name).unwrap_or_else(|| panic!("no {name} in page"))
}

/// A hidden form field's value, when the page has it.
pub fn field(page: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker)? + marker.len();
    page[start..].split('"').next().map(str::to_owned)
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(rand_bytes());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn rand_bytes() -> [u8; 32] {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).unwrap();
    b
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("{k} missing in {v}"))
}

async fn flow() -> Flow {
    setup(&[(
        "DRAWBRIDGE_OAUTH__INTROSPECTION_SECRET",
        INTROSPECTION_SECRET,
    )])
    .await
}

#[actix_web::test]
async fn a_complete_sign_in_issues_drawbridge_tokens_backed_by_google() {
    let f = flow().await;
    let client = f.register("client_secret_post").await;
    let login = f.login(&client).await;
    let (status, tokens) = f.exchange(&client, &login).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(s(&tokens, "access_token").starts_with("mcp_at_"));
    assert!(s(&tokens, "refresh_token").starts_with("mcp_rt_"));
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(
        tokens["scope"],
        "openid email profile https://www.googleapis.com/auth/drive.file"
    );
    let info = f.introspect(s(&tokens, "access_token")).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["client_id"], client.id.as_str());
    assert_eq!(info["sub"], fake_google::SUB);
    assert_eq!(info["username"], fake_google::EMAIL);
    assert_eq!(
        f.google.with(|s| s.exchanges.clone()),
        vec![fake_google::CLIENT_ID.to_owned()]
    );
    // Google's own tokens never reach the client.
    assert!(!tokens.to_string().contains("ya29."));
}

#[actix_web::test]
async fn a_wrong_pkce_verifier_a_reused_code_and_a_wrong_redirect_are_invalid_grant() {
    let f = flow().await;
    let client = f.register("client_secret_basic").await;
    let client_post = Client {
        id: client.id.clone(),
        secret: None,
        redirect: client.redirect.clone(),
    };
    // client_secret_basic: the secret goes in the header.
    let basic = |form: Vec<(&'static str, String)>| {
        f.app
            .client
            .post(f.app.url("/oauth/token"))
            .basic_auth(&client.id, client.secret.as_deref())
            .form(&form)
            .send()
    };
    let login = f.login(&client).await;
    let wrong = basic(vec![
        ("grant_type", "authorization_code".into()),
        ("code", login.code.clone()),
        ("redirect_uri", client.redirect.clone()),
        ("code_verifier", "x".repeat(43)),
    ])
    .await
    .unwrap();
    assert_eq!(wrong.status(), 400);
    assert_eq!(
        wrong.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    let mismatch = basic(vec![
        ("grant_type", "authorization_code".into()),
        ("code", login.code.clone()),
        ("redirect_uri", "http://127.0.0.1:1/other".into()),
        ("code_verifier", login.verifier.clone()),
    ])
    .await
    .unwrap();
    assert_eq!(
        mismatch.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    let good = || {
        basic(vec![
            ("grant_type", "authorization_code".into()),
            ("code", login.code.clone()),
            ("redirect_uri", client.redirect.clone()),
            ("code_verifier", login.verifier.clone()),
        ])
    };
    let first: Value = good().await.unwrap().json().await.unwrap();
    let access = s(&first, "access_token").to_owned();
    assert_eq!(f.introspect(&access).await["active"], true);
    let second = good().await.unwrap();
    assert_eq!(second.status(), 400);
    assert_eq!(
        second.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    assert_eq!(
        f.introspect(&access).await["active"],
        false,
        "a reused code revokes what it issued"
    );
    // The secret sent the wrong way (post instead of basic) is refused.
    let (status, body) = f.exchange(&client_post, &login).await;
    assert_eq!((status, s(&body, "error")), (401, "invalid_client"));
}

#[actix_web::test]
async fn unknown_clients_and_unregistered_redirect_uris_get_a_page_never_a_redirect() {
    let f = flow().await;
    let client = f.register("none").await;
    let no_follow = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    for (id, redirect) in [
        ("mcp_AAAAAAAAAAAAAAAAAAAAAA", client.redirect.as_str()),
        (client.id.as_str(), "https://evil.example/steal"),
        (client.id.as_str(), "http://127.0.0.1:1/elsewhere"),
    ] {
        let res = no_follow
            .get(f.app.url("/oauth/authorize"))
            .query(&[
                ("response_type", "code"),
                ("client_id", id),
                ("redirect_uri", redirect),
                ("state", "s"),
                ("code_challenge", &"a".repeat(43)),
                ("code_challenge_method", "S256"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{id} {redirect}");
        assert!(res.headers().get("location").is_none());
        assert_eq!(res.headers()["x-frame-options"], "DENY");
    }
}

#[actix_web::test]
async fn request_errors_after_the_redirect_uri_is_known_go_back_to_the_client() {
    let f = flow().await;
    let client = f.register("none").await;
    for (extra, error) in [
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("code_challenge", "")], "invalid_request"),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (
            vec![("resource", "https://other.example/mcp")],
            "invalid_target",
        ),
        (
            vec![("scope", "openid https://mail.google.com/")],
            "invalid_scope",
        ),
    ] {
        let (res, _) = f.authorize(&client, &extra).await;
        assert_eq!(res.url().path(), "/client/callback", "{extra:?}");
        let q: Value = res.json().await.unwrap();
        assert_eq!(q["error"], error, "{extra:?}: {q}");
        assert_eq!(q["state"], "client-state-123");
        assert_eq!(q["iss"], f.app.config.issuer());
    }
    // The right resource is accepted and bound to the token.
    let resource = f.app.config.resource();
    let (res, _) = f
        .authorize(&client, &[("resource", resource.as_str())])
        .await;
    assert_eq!(res.status(), 200);
}

#[actix_web::test]
async fn the_consent_page_names_the_client_refuses_framing_and_deny_answers_access_denied() {
    let f = flow().await;
    let client = f
        .register_with(
            json!({"token_endpoint_auth_method": "none", "client_name": "<b>Evil</b> & Co"}),
        )
        .await;
    let (res, _) = f.authorize(&client, &[]).await;
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    assert!(res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let page = res.text().await.unwrap();
    assert!(
        page.contains("&lt;b&gt;Evil&lt;/b&gt; &amp; Co"),
        "the name is escaped"
    );
    assert!(page.contains("127.0.0.1"), "the redirect host is shown");
    assert!(page.contains("See, edit, create and delete only the Google Drive files"));
    let landed = f.consent(&page, "deny").await;
    let q: Value = landed.json().await.unwrap();
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "client-state-123");
    assert!(f.google.with(|s| s.exchanges.is_empty()));
}

#[actix_web::test]
async fn a_missing_or_wrong_csrf_token_or_another_browser_cannot_approve() {
    let f = flow().await;
    let client = f.register("none").await;
    let (res, _) = f.authorize(&client, &[]).await;
    let page = res.text().await.unwrap();
    let state = hidden(&page, "state");
    let csrf = hidden(&page, "csrf");
    let post = |browser: &reqwest::Client, form: Vec<(&'static str, String)>| {
        browser.post(f.app.url("/oauth/consent")).form(&form).send()
    };
    let wrong = post(
        &f.browser,
        vec![
            ("state", state.clone()),
            ("csrf", "forged".into()),
            ("decision", "approve".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(wrong.status(), 403);
    let missing = post(
        &f.browser,
        vec![("state", state.clone()), ("decision", "approve".into())],
    )
    .await
    .unwrap();
    assert_eq!(missing.status(), 400);
    // The right token from another browser (no consent cookie): refused.
    let other = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    let elsewhere = post(
        &other,
        vec![
            ("state", state.clone()),
            ("csrf", csrf.clone()),
            ("decision", "approve".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(elsewhere.status(), 403);
    assert!(f.google.with(|s| s.exchanges.is_empty()));
    // The real form still works, once.
    let landed = post(
        &f.browser,
        vec![
            ("state", state.clone()),
            ("csrf", csrf.clone()),
            ("decision", "approve".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(landed.url().path(), "/client/callback");
    let again = post(
        &f.browser,
        vec![
            ("state", state),
            ("csrf", csrf),
            ("decision", "approve".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        again.status(),
        400,
        "a completed sign-in cannot be approved again"
    );
}

#[actix_web::test]
async fn a_replayed_callback_is_refused() {
    let f = flow().await;
    let client = f.register("none").await;
    let (res, _) = f.authorize(&client, &[]).await;
    let page = res.text().await.unwrap();
    let no_follow = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap();
    // Replay the consent with cookies copied by hand: use the browser for consent but stop at Google.
    let form = [
        ("state", hidden(&page, "state")),
        ("csrf", hidden(&page, "csrf")),
        ("decision", "approve".to_owned()),
    ];
    let to_google = f
        .browser
        .post(f.app.url("/oauth/consent"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(to_google.url().path(), "/client/callback");
    let history = f.google.with(|s| s.exchanges.len());
    assert_eq!(history, 1);
    // The same callback URL again (state replay): the transaction is gone.
    let state = hidden(&page, "state");
    let replay = no_follow
        .get(f.app.url("/oauth/callback"))
        .query(&[("code", "4/fake-google-code-1"), ("state", state.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 400);
    assert!(replay.headers().get("location").is_none());
    assert_eq!(f.google.with(|s| s.exchanges.len()), 1);
}

#[actix_web::test]
async fn public_clients_need_no_secret_and_a_wrong_secret_is_401_invalid_client() {
    let f = flow().await;
    let public = f.register("none").await;
    assert!(public.secret.is_none());
    let login = f.login(&public).await;
    let (status, tokens) = f.exchange(&public, &login).await;
    assert_eq!(status, 200, "{tokens}");

    let confidential = f.register("client_secret_post").await;
    let login = f.login(&confidential).await;
    let wrong = Client {
        id: confidential.id.clone(),
        secret: Some("mcp_cs_wrong".into()),
        redirect: confidential.redirect.clone(),
    };
    let res = f
        .app
        .client
        .post(f.app.url("/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &login.code),
            ("redirect_uri", &wrong.redirect),
            ("code_verifier", &login.verifier),
            ("client_id", &wrong.id),
            ("client_secret", "mcp_cs_wrong"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
    // The code was not spent by the failed attempt.
    assert_eq!(f.exchange(&confidential, &login).await.0, 200);
}

#[actix_web::test]
async fn refresh_rotates_tolerates_a_quick_duplicate_and_reuse_revokes_the_family() {
    let f = flow().await;
    let client = f.register("client_secret_post").await;
    let login = f.login(&client).await;
    let (_, first) = f.exchange(&client, &login).await;
    let rt1 = s(&first, "refresh_token").to_owned();
    let (status, second) = f.refresh(&client, &rt1).await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    // A duplicate post inside the grace window gets the same pair.
    f.app.clock.advance(5);
    let (status, dup) = f.refresh(&client, &rt1).await;
    assert_eq!(status, 200);
    assert_eq!(dup["access_token"], second["access_token"]);
    assert_eq!(dup["refresh_token"], second["refresh_token"]);
    // After the window, reuse of the old token revokes every token of the sign-in.
    f.app.clock.advance(60);
    let (status, err) = f.refresh(&client, &rt1).await;
    assert_eq!((status, s(&err, "error")), (400, "invalid_grant"));
    assert_eq!(
        f.introspect(s(&second, "access_token")).await["active"],
        false
    );
    assert_eq!(f.refresh(&client, s(&second, "refresh_token")).await.0, 400);
}

#[actix_web::test]
async fn access_tokens_expire_and_revocation_is_immediate() {
    let f = setup(&[
        (
            "DRAWBRIDGE_OAUTH__INTROSPECTION_SECRET",
            INTROSPECTION_SECRET,
        ),
        ("SESSION_TIMEOUT_MINUTES", "180"),
    ])
    .await;
    let client = f.register("client_secret_post").await;
    let login = f.login(&client).await;
    let (_, tokens) = f.exchange(&client, &login).await;
    let access = s(&tokens, "access_token");
    f.app.clock.advance(3599);
    assert_eq!(f.introspect(access).await["active"], true);
    f.app.clock.advance(1);
    assert_eq!(f.introspect(access).await, json!({"active": false}));
    // Revoking the refresh token kills its family.
    let (_, fresh) = f.refresh(&client, s(&tokens, "refresh_token")).await;
    let revoke = f
        .app
        .client
        .post(f.app.url("/oauth/revoke"))
        .form(&[
            ("token", s(&fresh, "refresh_token")),
            ("client_id", &client.id),
            ("client_secret", client.secret.as_deref().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 200);
    assert_eq!(
        f.introspect(s(&fresh, "access_token")).await["active"],
        false
    );
    // Unknown tokens are "revoked" too (RFC 7009), and a client can introspect its own tokens only.
    let unknown = f
        .app
        .client
        .post(f.app.url("/oauth/revoke"))
        .form(&[
            ("token", "nope"),
            ("client_id", &client.id),
            ("client_secret", client.secret.as_deref().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 200);
}

#[actix_web::test]
async fn upstream_time_out_500_and_rejection_reach_the_client_as_rfc_errors() {
    let f = flow().await;
    let client = f.register("none").await;
    for (mode, error) in [
        (
            Mode::Slow(std::time::Duration::from_millis(1500)),
            "temporarily_unavailable",
        ),
        (
            Mode::TokenError(500, json!({"oops": true})),
            "temporarily_unavailable",
        ),
        (
            Mode::TokenError(400, json!({"error": "invalid_grant"})),
            "server_error",
        ),
        (Mode::Deny, "access_denied"),
    ] {
        f.google.set_mode(mode.clone());
        let (res, _) = f.authorize(&client, &[]).await;
        let page = res.text().await.unwrap();
        let landed = f.consent(&page, "approve").await;
        let q: Value = landed.json().await.unwrap();
        assert_eq!(q["error"], error, "{mode:?}: {q}");
        assert_eq!(q["state"], "client-state-123");
        assert!(q.get("code").is_none());
    }
}

#[actix_web::test]
async fn an_expiring_google_token_is_refreshed_upstream_and_a_withdrawn_one_ends_the_sign_in() {
    let f = flow().await;
    f.google.set_expires_in(30);
    let client = f.register("client_secret_post").await;
    let login = f.login(&client).await;
    let (_, tokens) = f.exchange(&client, &login).await;
    let (status, next) = f.refresh(&client, s(&tokens, "refresh_token")).await;
    assert_eq!(status, 200, "{next}");
    assert_eq!(
        f.google.with(|s| s.refreshes),
        1,
        "the near-expiry Google token was refreshed"
    );
    // Google no longer honours the user's refresh token (access withdrawn).
    f.google.with(|s| s.expires_in = 30);
    f.google
        .set_mode(Mode::TokenError(400, json!({"error": "invalid_grant"})));
    f.app.clock.advance(60);
    let (status, err) = f.refresh(&client, s(&next, "refresh_token")).await;
    assert_eq!((status, s(&err, "error")), (400, "invalid_grant"));
    assert_eq!(
        f.introspect(s(&next, "access_token")).await["active"],
        false
    );
    // An unavailable Google is a 503, never invalid_grant.
    let login = {
        f.google.set_mode(Mode::Normal);
        f.login(&client).await
    };
    let (_, tokens) = f.exchange(&client, &login).await;
    f.app.clock.advance(60);
    f.google.set_mode(Mode::TokenError(503, json!({})));
    let (status, err) = f.refresh(&client, s(&tokens, "refresh_token")).await;
    assert_eq!((status, s(&err, "error")), (503, "temporarily_unavailable"));
    f.google.set_mode(Mode::Normal);
    assert_eq!(
        f.refresh(&client, s(&tokens, "refresh_token")).await.0,
        200,
        "the token survived the outage"
    );
}

#[actix_web::test]
async fn the_token_endpoint_refuses_json_unknown_grants_and_repeated_parameters() {
    let f = flow().await;
    let client = f.register("client_secret_post").await;
    let res = f
        .app
        .client
        .post(f.app.url("/oauth/token"))
        .json(&json!({"grant_type": "authorization_code"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert!(s(&body, "error_description").contains("x-www-form-urlencoded"));
    let (status, body) = f.token(&client, &[("grant_type", "password")]).await;
    assert_eq!((status, s(&body, "error")), (400, "unsupported_grant_type"));
    let (status, body) = f
        .token(
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", "a"),
                ("refresh_token", "b"),
            ],
        )
        .await;
    assert_eq!((status, s(&body, "error")), (400, "invalid_request"));
}

#[actix_web::test]
async fn passthrough_mode_returns_googles_tokens() {
    let f = setup(&[("TOKEN_MODE", "passthrough")]).await;
    let client = f.register("client_secret_post").await;
    let login = f.login(&client).await;
    let (status, tokens) = f.exchange(&client, &login).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(s(&tokens, "access_token").starts_with("ya29.fake-access-"));
    assert!(s(&tokens, "refresh_token").starts_with("1//fake-refresh-"));
    let (status, refreshed) = f.refresh(&client, s(&tokens, "refresh_token")).await;
    assert_eq!(status, 200, "{refreshed}");
    assert!(s(&refreshed, "access_token").starts_with("ya29."));
}

#[actix_web::test]
async fn direct_upstream_credentials_work_only_when_switched_on() {
    for enabled in [false, true] {
        let f = setup(&[(
            "DRAWBRIDGE_OAUTH__ALLOW_DIRECT_UPSTREAM_CREDENTIALS",
            if enabled { "true" } else { "false" },
        )])
        .await;
        // A legacy client got a code from Google directly.
        let verifier = "v".repeat(43);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let no_follow = reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .unwrap();
        let res = no_follow
            .get(format!("{}/authorize", f.google.url))
            .query(&[
                ("client_id", fake_google::CLIENT_ID),
                ("redirect_uri", "http://127.0.0.1:1/legacy"),
                ("state", "x"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
                ("access_type", "offline"),
                ("scope", "openid"),
            ])
            .send()
            .await
            .unwrap();
        let location = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
        let code = location
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .into_owned();
        let legacy = Client {
            id: fake_google::CLIENT_ID.into(),
            secret: Some(fake_google::CLIENT_SECRET.into()),
            redirect: "http://127.0.0.1:1/legacy".into(),
        };
        let (status, body) = f
            .token(
                &legacy,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", &legacy.redirect),
                    ("code_verifier", &verifier),
                ],
            )
            .await;
        if enabled {
            assert_eq!(status, 200, "{body}");
            assert!(s(&body, "access_token").starts_with("ya29."));
        } else {
            assert_eq!((status, s(&body, "error")), (401, "invalid_client"));
        }
    }
}

#[actix_web::test]
async fn a_custom_upstream_client_is_used_for_its_sign_ins() {
    let f = setup(&[("DRAWBRIDGE_OAUTH__ALLOW_CUSTOM_UPSTREAM_CLIENTS", "true")]).await;
    let client = f
        .register_with(json!({
            "token_endpoint_auth_method": "none",
            "upstream_client_id": fake_google::CUSTOM_CLIENT_ID,
            "upstream_client_secret": fake_google::CUSTOM_CLIENT_SECRET,
        }))
        .await;
    let login = f.login(&client).await;
    assert_eq!(f.exchange(&client, &login).await.0, 200);
    let plain = f.register("none").await;
    f.login(&plain).await;
    assert_eq!(
        f.google.with(|s| s.exchanges.clone()),
        vec![
            fake_google::CUSTOM_CLIENT_ID.to_owned(),
            fake_google::CLIENT_ID.to_owned()
        ]
    );
    // Without the operator's permission a registration cannot bring one.
    let off = setup(&[]).await;
    let (status, body) = off
        .app
        .register(&json!({"redirect_uris": ["https://a.example/cb"], "upstream_client_id": "x"}))
        .await;
    assert_eq!(
        (status, s(&body, "error")),
        (400, "invalid_client_metadata")
    );
}

#[actix_web::test]
async fn no_token_code_or_secret_appears_in_the_logs() {
    let f = flow().await;
    let client = f.register("client_secret_post").await;
    let login = f.login(&client).await;
    let (_, tokens) = f.exchange(&client, &login).await;
    let (_, refreshed) = f.refresh(&client, s(&tokens, "refresh_token")).await;
    f.introspect(s(&refreshed, "access_token")).await;
    let mut secrets = vec![
        login.code.clone(),
        login.verifier.clone(),
        client.secret.clone().unwrap(),
        s(&tokens, "access_token").to_owned(),
        s(&tokens, "refresh_token").to_owned(),
        s(&refreshed, "access_token").to_owned(),
        s(&refreshed, "refresh_token").to_owned(),
        fake_google::CLIENT_SECRET.to_owned(),
        INTROSPECTION_SECRET.to_owned(),
    ];
    secrets.extend(f.google.issued_tokens());
    let logs = captured_logs();
    assert!(
        logs.contains(&client.id) && logs.contains("token_issued"),
        "the flow was logged"
    );
    for secret in secrets {
        let tail = &secret[secret.len().saturating_sub(16)..];
        assert!(!logs.contains(tail), "a secret was logged: …{tail}");
    }
}

#[actix_web::test]
async fn two_concurrent_redemptions_of_one_code_never_both_succeed() {
    let f = flow().await;
    let client = f.register("none").await;
    let login = f.login(&client).await;
    let attempts = (0..8).map(|_| f.exchange(&client, &login));
    let results = futures_util::future::join_all(attempts).await;
    let wins = results.iter().filter(|(status, _)| *status == 200).count();
    assert_eq!(wins, 1, "{results:?}");
    assert!(results
        .iter()
        .all(|(status, body)| *status == 200 || body["error"] == "invalid_grant"));
}

#[actix_web::test]
async fn a_sign_in_survives_a_restart_between_the_redirect_and_the_callback() {
    use crate::binary::{start, terminate};
    let google = fake_google::start();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let mut env: Vec<(String, String)> = google.env();
    env.push(("CREDENTIALS_DIR".into(), "creds".into()));
    env.push(("MCP_PORT".into(), port.clone()));
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = start(dir.path(), &env_refs);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let reg: Value = http
        .post(format!("{base}/oauth/register"))
        .json(&json!({"redirect_uris": [google.client_callback()], "token_endpoint_auth_method": "none"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = s(&reg, "client_id").to_owned();
    let verifier = "w".repeat(43);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    // One browser (one cookie jar) across the restart: the sign-in is bound
    // to the browser that approved it.
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let browser = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(Policy::none())
        .build()
        .unwrap();
    let page = consent_page(
        &browser,
        &base,
        &client_id,
        &google.client_callback(),
        &challenge,
        Some("st"),
    )
    .await;
    let form = consent_form(&page, "approve");
    let to_google = browser
        .post(format!("{base}/oauth/consent"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let google_url = to_google.headers()["location"].to_str().unwrap().to_owned();
    assert!(google_url.starts_with(&google.url));

    // Drawbridge restarts while the user is at Google.
    let (code, _) = terminate(server);
    assert_eq!(code, 0);
    let server = start(dir.path(), &env_refs);
    let following = reqwest::Client::builder()
        .cookie_provider(jar)
        .redirect(Policy::limited(10))
        .build()
        .unwrap();
    let landed = following.get(&google_url).send().await.unwrap();
    let q: Value = landed.json().await.unwrap();
    let code = s(&q, "code").to_owned();
    let token: Value = http
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &google.client_callback()),
            ("code_verifier", &verifier),
            ("client_id", &client_id),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    terminate(server);
    assert!(s(&token, "access_token").starts_with("mcp_at_"), "{token}");
}

#[actix_web::test]
async fn a_client_that_sends_no_state_still_signs_in_with_pkce() {
    let f = flow().await;
    let client = f.register("none").await;
    let (res, verifier) = f.authorize(&client, &[("state", "")]).await;
    assert_eq!(res.status(), 200);
    let landed = f.consent(&res.text().await.unwrap(), "approve").await;
    let q: Value = landed.json().await.unwrap();
    assert!(q.get("state").is_none(), "no empty state is invented: {q}");
    let login = Login {
        code: s(&q, "code").to_owned(),
        verifier,
    };
    assert_eq!(f.exchange(&client, &login).await.0, 200);
}

#[actix_web::test]
async fn after_a_sign_in_the_encrypted_data_directory_names_no_user_and_holds_no_token() {
    let f = flow().await;
    let client = f.register("client_secret_post").await;
    let login = f.login(&client).await;
    let (_, tokens) = f.exchange(&client, &login).await;
    assert_eq!(
        f.introspect(s(&tokens, "access_token")).await["username"],
        fake_google::EMAIL,
        "the identity is still served"
    );
    let mut needles = vec![fake_google::EMAIL.to_owned(), fake_google::SUB.to_owned()];
    needles.extend(f.google.issued_tokens());
    needles.push(s(&tokens, "access_token").to_owned());
    needles.push(s(&tokens, "refresh_token").to_owned());
    fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                files(&p, out)
            } else {
                out.push(p)
            }
        }
    }
    // On sled, the files of the data directory; on PostgreSQL, every row.
    let mut stored: Vec<(String, Vec<u8>)> = crate::helpers::database_rows(f.app.dir.path());
    if stored.is_empty() {
        let mut all = Vec::new();
        files(&f.app.dir.path().join("credentials"), &mut all);
        for path in all {
            stored.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    assert!(!stored.is_empty());
    for (place, bytes) in stored {
        for needle in &needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{needle} found in {place}"
            );
        }
    }
}

#[actix_web::test]
async fn a_client_may_ask_for_more_than_the_scope_it_registered_to_step_up() {
    // MCP clients register with the scopes of their first sign-in and
    // re-authorize for more when a tool needs them: the registered `scope`
    // is the default, not a limit (the operator's limit is oauth.scopes).
    let f = flow().await;
    let client = f
        .register_with(json!({"token_endpoint_auth_method": "none", "scope": "openid email"}))
        .await;
    let login = f.login(&client).await;
    let (status, tokens) = f.exchange(&client, &login).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        tokens["scope"], "openid email",
        "the default is the registered scope"
    );
    let (res, verifier) = f
        .authorize(&client, &[("scope", "openid email profile")])
        .await;
    assert_eq!(res.status(), 200, "the consent page, not invalid_scope");
    let page = res.text().await.unwrap();
    let landed = f.consent(&page, "approve").await;
    let q: Value = landed.json().await.unwrap();
    let code = q["code"]
        .as_str()
        .unwrap_or_else(|| panic!("{q}"))
        .to_owned();
    let (status, tokens) = f.exchange(&client, &Login { code, verifier }).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["scope"], "openid email profile");
    // Beyond what the server offers is still refused.
    let (res, _) = f
        .authorize(&client, &[("scope", "openid https://mail.google.com/")])
        .await;
    let q: Value = res.json().await.unwrap();
    assert_eq!(q["error"], "invalid_scope", "{q}");
}
