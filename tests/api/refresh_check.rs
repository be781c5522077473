//! One refresh-token check: the token endpoint refuses an expired refresh
//! token before it does any upstream work for it, with the same answer the
//! rotation itself gives.

use serde_json::{json, Value};

use crate::fake_google::Mode;
use crate::login_flow::setup;

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("no {k}: {v}"))
}

/// SESSION_TIMEOUT_MINUTES is 60 by default: a refresh token unused for
/// an hour has expired.
const IDLE: i64 = 3600;

#[actix_web::test]
async fn an_expired_refresh_token_is_refused_without_refreshing_the_users_google_token() {
    let f = setup(&[]).await;
    f.google.set_expires_in(30);
    let client = f.register("client_secret_post").await;
    let login = f.login(&client).await;
    let (_, tokens) = f.exchange(&client, &login).await;
    f.app.clock.advance(IDLE);
    let (status, err) = f.refresh(&client, s(&tokens, "refresh_token")).await;
    assert_eq!((status, s(&err, "error")), (400, "invalid_grant"), "{err}");
    assert_eq!(
        f.google.with(|s| s.refreshes),
        0,
        "Google was asked to refresh the user's token for a refused request"
    );
}

#[actix_web::test]
async fn an_expired_refresh_token_is_invalid_grant_even_while_google_is_unavailable() {
    // A 503 would tell the client to retry a token that can never work;
    // invalid_grant tells it to sign the user in again.
    let f = setup(&[]).await;
    f.google.set_expires_in(30);
    let client = f.register("client_secret_post").await;
    let login = f.login(&client).await;
    let (_, tokens) = f.exchange(&client, &login).await;
    f.app.clock.advance(IDLE);
    f.google.set_mode(Mode::TokenError(503, json!({})));
    let (status, err) = f.refresh(&client, s(&tokens, "refresh_token")).await;
    assert_eq!((status, s(&err, "error")), (400, "invalid_grant"), "{err}");
}
