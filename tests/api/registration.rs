use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{captured_logs, sample_registration, spawn_app, spawn_app_with};

fn str_field<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("{k} missing in {v}"))
}

#[actix_web::test]
async fn registering_returns_201_with_mcp_credentials_and_a_management_uri() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(app.url("/oauth/register"))
        .json(&sample_registration())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    let id = str_field(&body, "client_id");
    assert!(id.starts_with("mcp_") && id.len() >= 4 + 22, "{id}");
    assert!(str_field(&body, "client_secret").len() >= 43);
    assert!(str_field(&body, "registration_access_token").len() >= 43);
    assert_eq!(
        body["registration_client_uri"],
        app.url(&format!("/oauth/register/{id}"))
    );
    assert_eq!(body["client_id_issued_at"], crate::helpers::T0);
    assert_eq!(body["client_secret_expires_at"], 0);
    assert_eq!(body["client_name"], "MCP Inspector");
    assert_eq!(
        body["redirect_uris"],
        sample_registration()["redirect_uris"]
    );
    assert_eq!(
        body["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(body["response_types"], json!(["code"]));
    assert_eq!(body["token_endpoint_auth_method"], "client_secret_post");
    assert_eq!(app.client_count().await, 1);
}

#[actix_web::test]
async fn the_register_alias_and_the_source_documents_defaults_work() {
    let app = spawn_app().await;
    let body = json!({"client_name": "Doc example", "redirect_uris": ["https://app.example/cb"]});
    let res = app
        .client
        .post(app.url("/register"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["grant_types"], json!(["authorization_code"]));
    assert_eq!(body["token_endpoint_auth_method"], "client_secret_post");
    assert!(body["client_secret"].is_string());
}

#[actix_web::test]
async fn a_public_client_gets_no_secret() {
    let app = spawn_app().await;
    let mut req = sample_registration();
    req["token_endpoint_auth_method"] = json!("none");
    let (status, body) = app.register(&req).await;
    assert_eq!(status, 201);
    assert!(body.get("client_secret").is_none(), "{body}");
    assert!(body.get("client_secret_expires_at").is_none());
    assert_eq!(body["token_endpoint_auth_method"], "none");
    assert!(body["registration_access_token"].is_string());
}

#[actix_web::test]
async fn the_whole_registration_life_cycle_works() {
    let app = spawn_app().await;
    let reg = app.register_ok().await;
    let id = str_field(&reg, "client_id");
    let token = str_field(&reg, "registration_access_token");

    let (status, read) = app.manage(Method::GET, id, Some(token), None).await;
    assert_eq!(status, 200);
    assert_eq!(read["client_id"], id);
    assert_eq!(read["redirect_uris"], reg["redirect_uris"]);
    assert_eq!(read["registration_access_token"], token);
    assert!(
        read.get("client_secret").is_none(),
        "secrets are never read back: {read}"
    );

    let update = json!({
        "client_id": id,
        "client_name": "Renamed",
        "redirect_uris": ["https://app.example/new-callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "client_secret_basic"
    });
    let (status, updated) = app
        .manage(Method::PUT, id, Some(token), Some(&update))
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["client_id"], id);
    assert_eq!(updated["client_name"], "Renamed");
    assert_eq!(updated["token_endpoint_auth_method"], "client_secret_basic");

    let (_, read) = app.manage(Method::GET, id, Some(token), None).await;
    assert_eq!(
        read["redirect_uris"],
        json!(["https://app.example/new-callback"])
    );
    assert_eq!(read["client_name"], "Renamed");

    let res = app
        .client
        .delete(app.url(&format!("/oauth/register/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 204);
    let (status, body) = app.manage(Method::GET, id, Some(token), None).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(app.client_count().await, 0);
}

#[actix_web::test]
async fn wrong_missing_or_another_clients_token_is_401_and_changes_nothing() {
    let app = spawn_app().await;
    let a = app.register_ok().await;
    let b = app.register_ok().await;
    let id = str_field(&a, "client_id");
    let good = str_field(&a, "registration_access_token");
    let others = str_field(&b, "registration_access_token");
    let change = json!({"client_name": "Hijacked", "redirect_uris": ["https://evil.example/cb"]});

    for token in [
        None,
        Some("mcp_rat_wrong"),
        Some(others),
        Some(&good[..good.len() - 1]),
    ] {
        for method in [Method::GET, Method::PUT, Method::DELETE] {
            let body = (method == Method::PUT).then_some(&change);
            let mut req = app
                .client
                .request(method.clone(), app.url(&format!("/oauth/register/{id}")));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let res = req.send().await.unwrap();
            assert_eq!(res.status().as_u16(), 401, "{method} with {token:?}");
            assert!(res.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer"));
            let err: Value = res.json().await.unwrap();
            assert_eq!(err["error"], "invalid_token");
        }
    }
    let (status, read) = app.manage(Method::GET, id, Some(good), None).await;
    assert_eq!(status, 200);
    assert_eq!(read["client_name"], "MCP Inspector");
    assert_eq!(read["redirect_uris"], a["redirect_uris"]);
    assert_eq!(app.client_count().await, 2);
    // A basic-auth header is not a registration access token.
    let res = app
        .client
        .get(app.url(&format!("/oauth/register/{id}")))
        .basic_auth(id, Some(good))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
}

#[actix_web::test]
async fn an_update_with_a_mismatched_client_id_is_refused() {
    let app = spawn_app().await;
    let a = app.register_ok().await;
    let id = str_field(&a, "client_id");
    let token = str_field(&a, "registration_access_token");
    let change = json!({"client_id": "mcp_AAAAAAAAAAAAAAAAAAAAAA", "redirect_uris": ["https://x.example/cb"]});
    let (status, body) = app
        .manage(Method::PUT, id, Some(token), Some(&change))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_client_metadata"))
    );
    let change =
        json!({"client_secret": "not-the-secret", "redirect_uris": ["https://x.example/cb"]});
    let (status, _) = app
        .manage(Method::PUT, id, Some(token), Some(&change))
        .await;
    assert_eq!(status, 400);
    let (_, read) = app.manage(Method::GET, id, Some(token), None).await;
    assert_eq!(read["redirect_uris"], a["redirect_uris"]);
}

#[actix_web::test]
async fn the_client_cap_answers_503_with_a_clear_error_and_stores_nothing() {
    let app = spawn_app_with(&[("MAX_PROXY_CLIENTS", "2")]).await;
    app.register_ok().await;
    app.register_ok().await;
    let (status, body) = app.register(&sample_registration()).await;
    assert_eq!(status, 503);
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(str_field(&body, "error_description").contains("maximum of 2 clients"));
    assert_eq!(app.client_count().await, 2);
}

#[actix_web::test]
async fn a_registration_never_used_expires_after_the_unused_window() {
    let app = spawn_app_with(&[("DRAWBRIDGE_CLIENTS__UNUSED_EXPIRY_MINUTES", "60")]).await;
    let reg = app.register_ok().await;
    let id = str_field(&reg, "client_id");
    let token = str_field(&reg, "registration_access_token");
    app.clock.advance(59 * 60);
    assert_eq!(app.manage(Method::GET, id, Some(token), None).await.0, 200);
    app.clock.advance(60);
    let (status, body) = app.manage(Method::GET, id, Some(token), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token"))
    );
}

#[actix_web::test]
async fn a_full_registry_makes_room_by_dropping_expired_registrations() {
    let app = spawn_app_with(&[("MAX_PROXY_CLIENTS", "1")]).await;
    app.register_ok().await;
    assert_eq!(app.register(&sample_registration()).await.0, 503);
    app.clock.advance(3600);
    assert_eq!(app.register(&sample_registration()).await.0, 201);
    assert_eq!(app.client_count().await, 1);
}

#[actix_web::test]
async fn no_client_secret_or_registration_token_ever_appears_in_the_logs() {
    let app = spawn_app().await;
    let reg = app.register_ok().await;
    let id = str_field(&reg, "client_id").to_owned();
    let token = str_field(&reg, "registration_access_token").to_owned();
    let mut secrets = vec![str_field(&reg, "client_secret").to_owned(), token.clone()];
    app.manage(Method::GET, &id, Some(&token), None).await;
    app.manage(Method::GET, &id, Some("mcp_rat_guess"), None)
        .await;
    let mut public = sample_registration();
    public["token_endpoint_auth_method"] = json!("none");
    let (_, pubreg) = app.register(&public).await;
    let pub_id = str_field(&pubreg, "client_id").to_owned();
    let pub_token = str_field(&pubreg, "registration_access_token").to_owned();
    secrets.push(pub_token.clone());
    // Moving to client_secret_post issues a new secret in the PUT answer.
    let upgrade = json!({"redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "client_secret_post"});
    let (_, up) = app
        .manage(Method::PUT, &pub_id, Some(&pub_token), Some(&upgrade))
        .await;
    secrets.push(str_field(&up, "client_secret").to_owned());
    app.manage(Method::DELETE, &id, Some(&token), None).await;

    let logs = captured_logs();
    assert!(
        logs.contains(&id),
        "the logs were captured and name the client"
    );
    assert!(logs.contains("client_registered"));
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "a secret was logged");
        // Not even its random part.
        assert!(
            !logs.contains(&secret[secret.len() - 20..]),
            "part of a secret was logged"
        );
    }
}
