//! Races: registrations against the client cap, and many requests refreshing
//! one sign-in at once. (Two redemptions of one code at once are in
//! `login_flow::two_concurrent_redemptions_of_one_code_never_both_succeed`.)

use serde_json::Value;

use crate::helpers::{sample_registration, spawn_app_with};
use crate::login_flow::{setup, INTROSPECTION_SECRET};

#[actix_web::test]
async fn registrations_racing_the_cap_never_exceed_it() {
    let app = spawn_app_with(&[("MAX_PROXY_CLIENTS", "25"), ("RATE_LIMIT_ENABLED", "false")]).await;
    let body = sample_registration();
    let attempts = (0..120).map(|_| app.register(&body));
    let results = futures_util::future::join_all(attempts).await;
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    let refused: Vec<&Value> = results
        .iter()
        .filter(|(s, _)| *s != 201)
        .map(|(s, b)| {
            assert_eq!(*s, 503, "{b}");
            b
        })
        .collect();
    assert_eq!(created, 25, "exactly the cap is created");
    assert_eq!(refused.len(), 95);
    assert!(refused
        .iter()
        .all(|b| b["error"] == "temporarily_unavailable"));
    assert_eq!(
        app.client_count().await,
        25,
        "the server holds no more than the cap"
    );
}

#[actix_web::test]
async fn many_requests_refreshing_one_sign_in_at_once_rotate_it_exactly_once() {
    let f = setup(&[
        (
            "DRAWBRIDGE_OAUTH__INTROSPECTION_SECRET",
            INTROSPECTION_SECRET,
        ),
        ("RATE_LIMIT_ENABLED", "false"),
    ])
    .await;
    let client = f.register("client_secret_post").await;
    let login = f.login(&client).await;
    let (_, first) = f.exchange(&client, &login).await;
    let rt = first["refresh_token"].as_str().unwrap().to_owned();

    let attempts = (0..24).map(|_| f.refresh(&client, &rt));
    let results = futures_util::future::join_all(attempts).await;
    // Inside the grace window every duplicate gets the one new pair.
    for (status, body) in &results {
        assert_eq!(*status, 200, "{body}");
    }
    let pair = &results[0].1;
    assert!(results
        .iter()
        .all(|(_, b)| b["refresh_token"] == pair["refresh_token"]
            && b["access_token"] == pair["access_token"]));
    assert_ne!(pair["refresh_token"], first["refresh_token"]);
    let active = f.introspect(pair["access_token"].as_str().unwrap()).await;
    assert_eq!(active["active"], true, "{active}");

    // The family goes on from the new token, once.
    let next = pair["refresh_token"].as_str().unwrap().to_owned();
    let attempts = (0..8).map(|_| f.refresh(&client, &next));
    let results = futures_util::future::join_all(attempts).await;
    assert!(results.iter().all(|(s, _)| *s == 200), "{results:?}");
    let third = &results[0].1;
    assert!(results
        .iter()
        .all(|(_, b)| b["refresh_token"] == third["refresh_token"]));

    // Reuse of the first token after the grace window ends the whole sign-in.
    f.app.clock.advance(120);
    let (status, err) = f.refresh(&client, &rt).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let gone = f.introspect(third["access_token"].as_str().unwrap()).await;
    assert_eq!(gone["active"], false, "{gone}");
}
