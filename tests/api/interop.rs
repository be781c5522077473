//! Interoperability gaps of the MCP authorization revision 2026-07-28 and
//! the RFCs it builds on, each driven as a client would meet it.

use crate::helpers::{sample_registration, spawn_app_with};

#[actix_web::test]
async fn the_registration_burst_follows_the_per_minute_rate_unless_set_on_its_own() {
    // MAX_REGISTRATIONS_PER_MINUTE=5 used to allow a burst of 60.
    let app = spawn_app_with(&[("MAX_REGISTRATIONS_PER_MINUTE", "5")]).await;
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(app.register(&sample_registration()).await.0);
    }
    assert_eq!(statuses, [201, 201, 201, 201, 201, 429, 429]);

    let app = spawn_app_with(&[
        ("MAX_REGISTRATIONS_PER_MINUTE", "5"),
        ("DRAWBRIDGE_RATE_LIMIT__REGISTRATION_BURST", "2"),
    ])
    .await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(app.register(&sample_registration()).await.0);
    }
    assert_eq!(statuses, [201, 201, 429]);
}

#[actix_web::test]
async fn discovery_advertises_only_registered_client_authentication_methods() {
    let app = spawn_app_with(&[]).await;
    let (_, doc) = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(
        doc["introspection_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_post", "client_secret_basic"])
    );
}
