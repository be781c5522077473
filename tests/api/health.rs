use crate::helpers::{spawn_app, spawn_app_with};

#[actix_web::test]
async fn health_oauth_reports_the_source_documents_fields() {
    let app = spawn_app().await;
    app.register_ok().await;
    let (status, body) = app.get_json("/health/oauth").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["proxy_clients"], 1);
    assert_eq!(body["storage_mode"], "FILE_ENCRYPTED");
    assert_eq!(body["encryption_enabled"], true);
    assert_eq!(body["google_oauth_configured"], false);
    assert_eq!(body["endpoints_available"]["discovery"], true);
    assert_eq!(body["endpoints_available"]["registration"], true);
    assert_eq!(body["endpoints_available"]["token"], true);
    assert_eq!(body["endpoints_available"]["authorization"], true);
}

#[actix_web::test]
async fn health_oauth_follows_the_storage_mode_and_google_settings() {
    let app = spawn_app_with(&[
        ("CREDENTIAL_STORAGE_MODE", "FILE_PLAINTEXT"),
        ("GOOGLE_CLIENT_ID", "id.apps.googleusercontent.com"),
        ("GOOGLE_CLIENT_SECRET", "s"),
    ])
    .await;
    let (_, body) = app.get_json("/health/oauth").await;
    assert_eq!(body["storage_mode"], "FILE_PLAINTEXT");
    assert_eq!(body["encryption_enabled"], false);
    assert_eq!(body["google_oauth_configured"], true);
}

#[actix_web::test]
async fn memory_only_mode_writes_nothing_to_disk() {
    let app = spawn_app_with(&[("CREDENTIAL_STORAGE_MODE", "MEMORY_ONLY")]).await;
    app.register_ok().await;
    assert_eq!(app.client_count().await, 1);
    assert!(!app.dir.path().join("credentials").exists());
}

#[actix_web::test]
async fn liveness_and_readiness_answer() {
    let app = spawn_app().await;
    assert_eq!(app.get_json("/health/live").await.0, 200);
    let (status, body) = app.get_json("/health/ready").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ready");
}

#[actix_web::test]
async fn unknown_paths_and_methods_get_json_errors() {
    let app = spawn_app().await;
    let (status, body) = app.get_json("/nope").await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    let res = app
        .client
        .get(app.url("/oauth/register"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 405);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}
