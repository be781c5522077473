//! Who a user is, with an OpenID upstream: only a verified email names a
//! user (gateway header, introspection `username`, admin revoke by email),
//! users are their issuer and subject, ID tokens are validated, and the
//! issuer is never reached over plain HTTP beyond loopback.

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

use crate::binary::drawbridge;
use crate::fake_google::IdTokenFault;
use crate::helpers::ADMIN_TOKEN;
use crate::login_flow::{setup, Client, Flow, INTROSPECTION_SECRET};

/// An MCP server that answers with the identity header it received.
fn echo_mcp() -> String {
    async fn echo(req: HttpRequest) -> HttpResponse {
        let user = req
            .headers()
            .get("x-drawbridge-user")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        HttpResponse::Ok().json(json!({ "user": user }))
    }
    let server = HttpServer::new(|| App::new().default_service(web::to(echo)))
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
    let port = server.addrs()[0].port();
    actix_web::rt::spawn(server.run());
    format!("http://127.0.0.1:{port}")
}

async fn flow_with_gateway() -> Flow {
    let upstream = echo_mcp();
    setup(&[
        ("GATEWAY_UPSTREAM_URL", upstream.as_str()),
        (
            "DRAWBRIDGE_OAUTH__INTROSPECTION_SECRET",
            INTROSPECTION_SECRET,
        ),
    ])
    .await
}

/// Signs `sub` in at the fake upstream and answers Drawbridge's tokens.
async fn sign_in(
    f: &Flow,
    client: &Client,
    sub: &str,
    email: &str,
    verified: Option<Value>,
) -> Value {
    f.google.set_user(sub, email, verified);
    let login = f.login(client).await;
    let (status, tokens) = f.exchange(client, &login).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

/// The `X-Drawbridge-User` the MCP server receives for `token`.
async fn gateway_user(f: &Flow, token: &Value) -> Value {
    let res = f
        .gateway_ping(token["access_token"].as_str().unwrap())
        .await;
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["user"].clone()
}

async fn active(f: &Flow, token: &Value) -> bool {
    f.introspect(token["access_token"].as_str().unwrap()).await["active"] == true
}

#[actix_web::test]
async fn an_unverified_copy_of_a_verified_email_never_becomes_that_user() {
    let f = flow_with_gateway().await;
    let client = f.register("client_secret_post").await;
    let victim = sign_in(&f, &client, "victim-sub", "v@x.org", Some(json!(true))).await;
    // Second accounts at the provider with the victim's address, unverified
    // (said so, or not said at all).
    let attacker = sign_in(&f, &client, "attacker-sub", "v@x.org", Some(json!(false))).await;
    let silent = sign_in(&f, &client, "silent-sub", "V@X.org", None).await;

    assert_eq!(gateway_user(&f, &victim).await, "v@x.org");
    assert_eq!(gateway_user(&f, &attacker).await, "attacker-sub");
    assert_eq!(gateway_user(&f, &silent).await, "silent-sub");

    let seen = f.introspect(victim["access_token"].as_str().unwrap()).await;
    assert_eq!(seen["username"], "v@x.org", "{seen}");
    for (token, sub) in [(&attacker, "attacker-sub"), (&silent, "silent-sub")] {
        let seen = f.introspect(token["access_token"].as_str().unwrap()).await;
        assert_eq!(seen["active"], true);
        assert_eq!(seen["sub"], sub);
        assert!(seen.get("username").is_none(), "{seen}");
    }

    // The admin revokes the address: the victim goes, the others stay.
    let res = f
        .app
        .client
        .delete(f.app.url("/admin/v1/users/v%40x.org"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        (body["users"].as_u64(), body["revoked_grants"].as_u64()),
        (Some(1), Some(1)),
        "{body}"
    );
    assert!(
        !active(&f, &victim).await,
        "the victim's tokens are revoked"
    );
    assert!(
        active(&f, &attacker).await,
        "the unverified user is untouched"
    );
    assert!(
        active(&f, &silent).await,
        "the unverified user is untouched"
    );
    // Nobody else has that verified address now.
    let res = f
        .app
        .client
        .post(f.app.url("/admin/v1/tokens/revoke"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"email": "v@x.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert!(active(&f, &attacker).await);
}

#[actix_web::test]
async fn revoking_an_email_revokes_every_user_who_verified_it() {
    let f = flow_with_gateway().await;
    let client = f.register("client_secret_post").await;
    let first = sign_in(&f, &client, "first-sub", "shared@x.org", Some(json!(true))).await;
    let second = sign_in(
        &f,
        &client,
        "second-sub",
        "Shared@X.org",
        Some(json!("true")),
    )
    .await;
    let other = sign_in(&f, &client, "other-sub", "other@x.org", Some(json!(true))).await;
    let res = f
        .app
        .client
        .post(f.app.url("/admin/v1/tokens/revoke"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"email": "shared@x.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["revoked_grants"], 2);
    assert!(!active(&f, &first).await);
    assert!(!active(&f, &second).await);
    assert!(active(&f, &other).await);
}

#[actix_web::test]
async fn an_id_token_that_is_forged_misaddressed_foreign_expired_or_replayed_signs_nobody_in() {
    let f = flow_with_gateway().await;
    let client = f.register("client_secret_post").await;
    for fault in [
        IdTokenFault::BadSignature,
        IdTokenFault::WrongAudience,
        IdTokenFault::WrongIssuer,
        IdTokenFault::Expired,
        IdTokenFault::WrongNonce,
        IdTokenFault::Unsigned,
    ] {
        f.google.set_id_token_fault(Some(fault));
        let (res, _) = f.authorize(&client, &[]).await;
        let page = res.text().await.unwrap();
        let landed = f.consent(&page, "approve").await;
        assert_eq!(landed.url().path(), "/client/callback", "{fault:?}");
        let q: Value = landed.json().await.unwrap();
        assert_eq!(q["error"], "server_error", "{fault:?}: {q}");
        assert!(q.get("code").is_none(), "{fault:?}: {q}");
    }
    // Nothing was stored for any of them.
    let users: Value = f
        .app
        .client
        .get(f.app.url("/admin/v1/users"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(users["users"], json!([]), "{users}");
    // A sound token still signs in, as the verified user it names.
    f.google.set_id_token_fault(None);
    let tokens = sign_in(&f, &client, "sound-sub", "sound@x.org", Some(json!(true))).await;
    assert_eq!(gateway_user(&f, &tokens).await, "sound@x.org");
}

#[actix_web::test]
async fn introspection_names_the_email_only_to_a_grant_that_includes_it() {
    let f = flow_with_gateway().await;
    let client = f.register("client_secret_post").await;
    for (scope, named) in [("openid", false), ("openid email", true)] {
        let (res, verifier) = f.authorize(&client, &[("scope", scope)]).await;
        let page = res.text().await.unwrap();
        let landed = f.consent(&page, "approve").await;
        let q: Value = landed.json().await.unwrap();
        let login = crate::login_flow::Login {
            code: q["code"].as_str().unwrap().to_owned(),
            verifier,
        };
        let (status, tokens) = f.exchange(&client, &login).await;
        assert_eq!(status, 200, "{tokens}");
        let seen = f.introspect(tokens["access_token"].as_str().unwrap()).await;
        assert_eq!(seen["active"], true);
        assert_eq!(seen["scope"], scope);
        assert_eq!(seen["sub"], crate::fake_google::SUB);
        if named {
            assert_eq!(seen["username"], crate::fake_google::EMAIL, "{seen}");
        } else {
            assert!(seen.get("username").is_none(), "{scope}: {seen}");
        }
        // The operator's own MCP server still learns who it is.
        assert_eq!(gateway_user(&f, &tokens).await, crate::fake_google::EMAIL);
    }
}

#[test]
fn a_plain_http_issuer_or_key_set_beyond_loopback_is_refused_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let base = [
        ("GOOGLE_CLIENT_ID", "client.example"),
        ("GOOGLE_CLIENT_SECRET", "secret"),
    ];
    type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![
                ("UPSTREAM_PROVIDER", "oidc"),
                ("DRAWBRIDGE_UPSTREAM__ISSUER", "http://idp.example.com"),
            ],
            "upstream.issuer",
        ),
        (
            vec![
                ("UPSTREAM_PROVIDER", "google"),
                ("DRAWBRIDGE_UPSTREAM__ISSUER", "http://10.1.2.3:8080"),
                ("DRAWBRIDGE_UPSTREAM__JWKS_URI", "https://10.1.2.3/jwks"),
            ],
            "upstream.issuer",
        ),
        (
            vec![
                ("UPSTREAM_PROVIDER", "oidc"),
                ("DRAWBRIDGE_UPSTREAM__ISSUER", "https://idp.example.com"),
                (
                    "DRAWBRIDGE_UPSTREAM__JWKS_URI",
                    "http://idp.example.com/jwks",
                ),
            ],
            "upstream.jwks_uri",
        ),
        // The token endpoint sees the real client secret and the users'
        // Google tokens; the authorization endpoint, the user's browser.
        (
            vec![(
                "DRAWBRIDGE_UPSTREAM__TOKEN_URI",
                "http://idp.example.com/token",
            )],
            "upstream.token_uri",
        ),
        (
            vec![(
                "DRAWBRIDGE_UPSTREAM__AUTH_URI",
                "http://idp.example.com/authorize",
            )],
            "upstream.auth_uri",
        ),
        (
            vec![(
                "DRAWBRIDGE_UPSTREAM__USERINFO_URI",
                "http://192.0.2.8/userinfo",
            )],
            "upstream.userinfo_uri",
        ),
    ];
    for (vars, key) in cases {
        let env: Vec<(&str, &str)> = base.iter().copied().chain(vars).collect();
        for args in [&["check-config"][..], &[][..]] {
            let out = drawbridge(dir.path(), &env).args(args).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{env:?} {args:?}: {stderr}");
            assert!(stderr.contains(key), "{stderr} should name {key}");
            assert!(
                stderr.contains("https://"),
                "{stderr} should say what to use"
            );
        }
    }
    // Loopback is fine over http (a local provider, the end-to-end tests).
    let out = drawbridge(
        dir.path(),
        &[
            ("UPSTREAM_PROVIDER", "oidc"),
            ("DRAWBRIDGE_UPSTREAM__ISSUER", "http://127.0.0.1:9"),
            ("GOOGLE_CLIENT_ID", "client.example"),
            ("GOOGLE_CLIENT_SECRET", "secret"),
        ],
    )
    .arg("check-config")
    .output()
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The user list as the admin API shows it.
async fn users(app: &crate::helpers::TestApp) -> Vec<Value> {
    let list: Value = app
        .client
        .get(app.url("/admin/v1/users"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list["users"].as_array().unwrap().clone()
}

#[actix_web::test]
async fn the_dev_providers_signed_id_tokens_validate_and_sign_the_demo_user_in() {
    // The README demo, as scripts/demo-flow.sh drives it.
    let echo = crate::fake_google::start();
    let app = crate::helpers::spawn_app_with(&[("UPSTREAM_PROVIDER", "dev")]).await;
    let (_, reg) = app
        .register(&json!({"redirect_uris": [echo.client_callback()], "token_endpoint_auth_method": "none"}))
        .await;
    let client_id = reg["client_id"].as_str().unwrap();
    let (verifier, challenge) = crate::login_flow::pkce();
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = crate::login_flow::consent_page(
        &browser,
        &app.address,
        client_id,
        &echo.client_callback(),
        &challenge,
        Some("demo"),
    )
    .await;
    let location = |res: &reqwest::Response| res.headers()["location"].to_str().unwrap().to_owned();
    let res = browser
        .post(app.url("/oauth/consent"))
        .form(&crate::login_flow::consent_form(&page, "approve"))
        .send()
        .await
        .unwrap();
    let idp = url::Url::parse(&location(&res)).unwrap();
    assert!(idp.query_pairs().any(|(k, _)| k == "nonce"), "{idp}");
    let res = browser
        .post(app.url(idp.path()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(idp.query().unwrap().to_owned())
        .send()
        .await
        .unwrap();
    let res = browser.get(location(&res)).send().await.unwrap();
    let back = url::Url::parse(&location(&res)).unwrap();
    let code = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap_or_else(|| panic!("no code: {back}"))
        .1
        .into_owned();
    crate::helpers::remember_secret(&code);
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &echo.client_callback()),
            ("code_verifier", &verifier),
            ("client_id", client_id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    for t in ["access_token", "refresh_token"] {
        if let Some(secret) = tokens[t].as_str() {
            crate::helpers::remember_secret(secret);
        }
    }
    assert!(tokens["access_token"].is_string(), "{tokens}");
    let users = users(&app).await;
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users[0]["issuer"], drawbridge::upstream::dev::ISSUER);
    assert_eq!(users[0]["email"], drawbridge::upstream::dev::DEMO_EMAIL);
    assert_eq!(users[0]["email_verified"], true);
}

#[actix_web::test]
async fn an_oidc_issuer_is_discovered_and_its_signed_id_tokens_sign_users_in() {
    let f = setup(&[
        ("UPSTREAM_PROVIDER", "oidc"),
        ("DRAWBRIDGE_UPSTREAM__AUTH_URI", ""),
        ("DRAWBRIDGE_UPSTREAM__TOKEN_URI", ""),
        ("DRAWBRIDGE_UPSTREAM__USERINFO_URI", ""),
        ("DRAWBRIDGE_UPSTREAM__REVOCATION_URI", ""),
        ("DRAWBRIDGE_UPSTREAM__JWKS_URI", ""),
    ])
    .await;
    let client = f.register("client_secret_post").await;
    let tokens = sign_in(&f, &client, "oidc-sub", "o@x.org", Some(json!(true))).await;
    assert!(tokens["access_token"].is_string());
    let users = users(&f.app).await;
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users[0]["issuer"], f.google.url);
    assert_eq!(users[0]["sub"], "oidc-sub");
    // Keys came from discovery: a forged token is still refused.
    f.google
        .set_id_token_fault(Some(IdTokenFault::BadSignature));
    let (res, _) = f.authorize(&client, &[]).await;
    let page = res.text().await.unwrap();
    let q: Value = f.consent(&page, "approve").await.json().await.unwrap();
    assert_eq!(q["error"], "server_error", "{q}");
}

#[actix_web::test]
async fn without_an_id_token_only_a_userinfo_answer_that_says_verified_names_the_user() {
    let f = flow_with_gateway().await;
    f.google.with(|s| s.no_id_token = true);
    let client = f.register("client_secret_post").await;
    let verified = sign_in(&f, &client, "info-sub", "i@x.org", Some(json!(true))).await;
    let unverified = sign_in(&f, &client, "other-sub", "i@x.org", None).await;
    assert_eq!(gateway_user(&f, &verified).await, "i@x.org");
    assert_eq!(gateway_user(&f, &unverified).await, "other-sub");
}

#[actix_web::test]
async fn a_user_stored_by_the_previous_release_is_taken_over_at_their_next_sign_in() {
    use drawbridge::actors::vault::{UpstreamTokens, UserCredentialsV1};
    use drawbridge::storage::{codec, Tree};
    let google = crate::fake_google::start();
    let env = google.env();
    let vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let dir = tempfile::tempdir().unwrap();
    let cfg = crate::helpers::config_with(dir.path(), &vars);
    {
        // What the previous release wrote: record format 1, keyed by the
        // subject alone, the email indexed under its bare key.
        let _lock = drawbridge::persistence::lock_dir(&cfg).unwrap();
        let opened = drawbridge::persistence::open_mode(&cfg, cfg.storage.mode, false, 1).unwrap();
        let old = UserCredentialsV1 {
            uid: "u_previous_release".into(),
            sub: crate::fake_google::SUB.into(),
            email: Some(crate::fake_google::EMAIL.into()),
            tokens: UpstreamTokens {
                access_token: "ya29.previous".into(),
                refresh_token: Some("1//previous".into()),
                expires_at: Some(1),
                scopes: vec!["openid".into(), "email".into()],
                id_token: None,
            },
            created_at: 1,
            updated_at: 1,
        };
        let key = opened.codec.identity_key("sub", crate::fake_google::SUB);
        let sealed = opened
            .codec
            .wrap("user", key.as_bytes(), &codec::encode(&old).unwrap());
        let store = &opened.store;
        store.insert(Tree::Users, key.as_bytes(), sealed).unwrap();
        store
            .insert(
                Tree::UserIds,
                b"u_previous_release",
                key.clone().into_bytes(),
            )
            .unwrap();
        let email_key = opened
            .codec
            .identity_key("email", crate::fake_google::EMAIL);
        store
            .insert(Tree::UserEmails, email_key.as_bytes(), key.into_bytes())
            .unwrap();
        store.flush().unwrap();
    }
    let app = crate::helpers::spawn_app_in(dir, &vars).await;
    // Read as it was: issuer unknown, email unverified (nothing says so).
    let before = users(&app).await;
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(
        (&before[0]["issuer"], &before[0]["email_verified"]),
        (&json!(""), &json!(false))
    );
    let f = Flow::new(app, google);
    let client = f.register("client_secret_post").await;
    sign_in(
        &f,
        &client,
        crate::fake_google::SUB,
        crate::fake_google::EMAIL,
        Some(json!(true)),
    )
    .await;
    // The same user, now under issuer and subject, email verified.
    let after = users(&f.app).await;
    assert_eq!(after.len(), 1, "taken over, not duplicated: {after:?}");
    assert_eq!(after[0]["issuer"], f.google.url);
    assert_eq!(after[0]["email_verified"], true);
    assert_eq!(after[0]["grants"], 1);
}

#[actix_web::test]
async fn the_same_subject_from_another_issuer_is_another_user() {
    use drawbridge::actors::vault::{UpstreamTokens, UserCredentials, VaultCore};
    use drawbridge::storage::Owned;
    let google = crate::fake_google::start();
    let env = google.env();
    let vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let dir = tempfile::tempdir().unwrap();
    let cfg = crate::helpers::config_with(dir.path(), &vars);
    {
        // A user of another issuer (an earlier upstream) with the same sub.
        let _lock = drawbridge::persistence::lock_dir(&cfg).unwrap();
        let opened = drawbridge::persistence::open_mode(&cfg, cfg.storage.mode, false, 1).unwrap();
        let mut vault = VaultCore::new(
            Owned::new(opened.store),
            opened.codec,
            opened.key_source,
            true,
            None,
        );
        vault
            .store_user(UserCredentials {
                uid: String::new(),
                issuer: "https://other-issuer.example".into(),
                sub: crate::fake_google::SUB.into(),
                email: Some("someone@other.example".into()),
                email_verified: true,
                tokens: UpstreamTokens {
                    access_token: "ya29.other-issuer".into(),
                    refresh_token: None,
                    expires_at: Some(1),
                    scopes: vec!["openid".into()],
                    id_token: None,
                },
                created_at: 1,
                updated_at: 1,
            })
            .unwrap();
    }
    let f = Flow::new(crate::helpers::spawn_app_in(dir, &vars).await, google);
    let client = f.register("client_secret_post").await;
    sign_in(
        &f,
        &client,
        crate::fake_google::SUB,
        crate::fake_google::EMAIL,
        Some(json!(true)),
    )
    .await;
    let mut issuers: Vec<String> = users(&f.app)
        .await
        .iter()
        .map(|u| {
            assert_eq!(u["sub"], crate::fake_google::SUB);
            u["issuer"].as_str().unwrap().to_owned()
        })
        .collect();
    issuers.sort();
    assert_eq!(
        issuers,
        vec![
            f.google.url.clone(),
            "https://other-issuer.example".to_owned()
        ]
    );
}
