//! Hostile and malformed registration input: the right 4xx, the RFC error
//! body, and nothing stored.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with};

async fn assert_refused(app: &crate::helpers::TestApp, body: Value, status: u16, error: &str) {
    let (got, res) = app.register(&body).await;
    assert_eq!(got, status, "{body} -> {res}");
    assert_eq!(res["error"], error, "{body} -> {res}");
    assert!(
        res["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{res}"
    );
}

#[actix_web::test]
async fn every_dangerous_redirect_uri_form_is_refused() {
    let app = spawn_app().await;
    for uri in [
        "javascript:alert(document.cookie)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "file:///etc/passwd",
        "vbscript:msgbox(1)",
        "https://app.example/cb#fragment",
        "https://user:password@app.example/cb",
        "https://app.example\\@evil.example/cb",
        "http://app.example/cb",
        "http://192.168.1.10/cb",
        "http://localhost.evil.example/cb",
        "not a uri",
        "/relative/callback",
        "",
    ] {
        assert_refused(
            &app,
            json!({"client_name": "x", "redirect_uris": [uri]}),
            400,
            "invalid_redirect_uri",
        )
        .await;
        // One bad URI among good ones still refuses the whole registration.
        let mixed = json!({"redirect_uris": ["https://ok.example/cb", uri]});
        assert_refused(&app, mixed, 400, "invalid_redirect_uri").await;
    }
    assert_refused(
        &app,
        json!({"client_name": "x"}),
        400,
        "invalid_redirect_uri",
    )
    .await;
    assert_refused(
        &app,
        json!({"client_name": "x", "redirect_uris": []}),
        400,
        "invalid_redirect_uri",
    )
    .await;
    assert_eq!(app.client_count().await, 0);
}

#[actix_web::test]
async fn native_app_schemes_and_loopback_http_are_accepted() {
    let app = spawn_app().await;
    let body = json!({"redirect_uris": [
        "cursor://anysphere.cursor-retrieval/oauth/user-callback",
        "http://127.0.0.1:33418/callback",
        "http://[::1]:8080/cb",
        "https://claude.ai/api/mcp/auth_callback"
    ]});
    assert_eq!(app.register(&body).await.0, 201);
}

#[actix_web::test]
async fn an_operator_allowlist_narrows_redirect_uris() {
    let app = spawn_app_with(&[(
        "DRAWBRIDGE_OAUTH__ALLOWED_REDIRECT_URIS",
        "https://claude.ai/*,http://127.0.0.1:*",
    )])
    .await;
    assert_eq!(
        app.register(&json!({"redirect_uris": ["https://claude.ai/api/mcp/auth_callback"]}))
            .await
            .0,
        201
    );
    assert_eq!(
        app.register(&json!({"redirect_uris": ["http://127.0.0.1:5173/cb"]}))
            .await
            .0,
        201
    );
    assert_refused(
        &app,
        json!({"redirect_uris": ["https://chatgpt.com/cb"]}),
        400,
        "invalid_redirect_uri",
    )
    .await;
    assert_refused(
        &app,
        json!({"redirect_uris": ["http://localhost:5173/cb"]}),
        400,
        "invalid_redirect_uri",
    )
    .await;
    assert_eq!(app.client_count().await, 2);
}

#[actix_web::test]
async fn bad_metadata_is_invalid_client_metadata() {
    let app = spawn_app().await;
    let uris = json!(["https://app.example/cb"]);
    for body in [
        json!({"redirect_uris": uris, "scope": "openid https://www.googleapis.com/auth/gmail.send"}),
        json!({"redirect_uris": uris, "grant_types": ["client_credentials"]}),
        json!({"redirect_uris": uris, "grant_types": ["refresh_token"]}),
        json!({"redirect_uris": uris, "response_types": ["token"]}),
        json!({"redirect_uris": uris, "token_endpoint_auth_method": "private_key_jwt"}),
        json!({"redirect_uris": uris, "logo_uri": "javascript:alert(1)"}),
        json!({"redirect_uris": uris, "client_name": "x".repeat(201)}),
        json!({"redirect_uris": "https://app.example/cb"}),
        json!({"redirect_uris": uris, "contacts": "ops@example.com"}),
        json!([1, 2, 3]),
    ] {
        assert_refused(&app, body, 400, "invalid_client_metadata").await;
    }
    assert_eq!(app.client_count().await, 0);
}

#[actix_web::test]
async fn configured_scopes_may_be_requested() {
    let app = spawn_app_with(&[("GOOGLE_OAUTH_SCOPES", "openid email profile")]).await;
    let (status, body) = app
        .register(&json!({"redirect_uris": ["https://a.example/cb"], "scope": "openid email"}))
        .await;
    assert_eq!(status, 201);
    assert_eq!(body["scope"], "openid email");
}

#[actix_web::test]
async fn malformed_wrong_type_and_oversize_bodies_get_rfc_errors() {
    let app = spawn_app_with(&[("DRAWBRIDGE_SERVER__MAX_BODY_BYTES", "2048")]).await;
    let post = |body: Vec<u8>, content_type: Option<&'static str>| {
        let mut req = app.client.post(app.url("/oauth/register")).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        req.send()
    };
    let cases: Vec<(Vec<u8>, Option<&'static str>, u16, &str)> = vec![
        (
            b"{\"redirect_uris\": [".to_vec(),
            Some("application/json"),
            400,
            "invalid_client_metadata",
        ),
        (
            b"not json at all".to_vec(),
            Some("application/json"),
            400,
            "invalid_client_metadata",
        ),
        (
            vec![0xff, 0xfe, 0x00, 0x81],
            Some("application/json"),
            400,
            "invalid_client_metadata",
        ),
        (
            b"".to_vec(),
            Some("application/json"),
            400,
            "invalid_client_metadata",
        ),
        (
            b"redirect_uris=https://a.example/cb".to_vec(),
            Some("application/x-www-form-urlencoded"),
            415,
            "invalid_request",
        ),
        (
            b"{\"redirect_uris\": [\"https://a.example/cb\"]}".to_vec(),
            None,
            415,
            "invalid_request",
        ),
        (
            format!(
                "{{\"client_name\": \"{}\", \"redirect_uris\": [\"https://a.example/cb\"]}}",
                "x".repeat(4096)
            )
            .into_bytes(),
            Some("application/json"),
            413,
            "invalid_request",
        ),
    ];
    for (body, ct, status, error) in cases {
        let res = post(body, ct).await.unwrap();
        assert_eq!(res.status().as_u16(), status, "{ct:?}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], error);
    }
    assert_eq!(app.client_count().await, 0);
}

#[actix_web::test]
async fn an_application_json_charset_content_type_is_accepted() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(app.url("/oauth/register"))
        .header("content-type", "application/json; charset=utf-8")
        .body(r#"{"redirect_uris": ["https://a.example/cb"], "unknown_field": {"nested": true}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
}
