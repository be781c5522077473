//! PostgreSQL failing under a running Drawbridge (`storage.backend =
//! "postgres"`): while the database is down, or a statement is cancelled by
//! `storage.statement_timeout_ms`, every request that needs it answers 503
//! `temporarily_unavailable` with `Retry-After` within the timeout and a
//! few seconds, readiness says not ready, nothing acknowledged is lost and
//! nothing is half done; service resumes by itself when PostgreSQL is back.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::login_flow::{setup, Client, Flow, INTROSPECTION_SECRET};
use crate::postgres_server::{fresh_database, shared_server, PrivateServer};

/// `storage.statement_timeout_ms` of these tests.
const STATEMENT_TIMEOUT: Duration = Duration::from_millis(1000);
/// How much later than the statement timeout a refusal may come.
const SLACK: Duration = Duration::from_secs(3);

/// Drawbridge on `database_url`, its gateway in front of a fake MCP server.
async fn drawbridge_on(database_url: &str) -> Flow {
    let upstream = crate::gateway::fake_mcp();
    let timeout = STATEMENT_TIMEOUT.as_millis().to_string();
    setup(&[
        ("DRAWBRIDGE_STORAGE__BACKEND", "postgres"),
        ("DATABASE_URL", database_url),
        ("DRAWBRIDGE_STORAGE__STATEMENT_TIMEOUT_MS", &timeout),
        (
            "DRAWBRIDGE_OAUTH__INTROSPECTION_SECRET",
            INTROSPECTION_SECRET,
        ),
        ("GATEWAY_UPSTREAM_URL", &upstream),
    ])
    .await
}

/// A signed-in client: its code, still to redeem, and a token pair.
struct SignedIn {
    client: Client,
    code: crate::login_flow::Login,
    access: String,
    refresh: String,
}

async fn sign_in(f: &Flow) -> SignedIn {
    let client = f.register("client_secret_post").await;
    let code = f.login(&client).await;
    let redeemed = f.login(&client).await;
    let (status, tokens) = f.exchange(&client, &redeemed).await;
    assert_eq!(status, 200, "{tokens}");
    SignedIn {
        access: tokens["access_token"].as_str().unwrap().to_owned(),
        refresh: tokens["refresh_token"].as_str().unwrap().to_owned(),
        client,
        code,
    }
}

/// The requests a client and a resource server make, as `(what, request)`.
fn requests(f: &Flow, s: &SignedIn) -> Vec<(&'static str, reqwest::RequestBuilder)> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let secret = s.client.secret.as_deref().unwrap();
    let token = |form: Vec<(&str, &str)>| {
        let mut form = form;
        form.extend([
            ("client_id", s.client.id.as_str()),
            ("client_secret", secret),
        ]);
        http.post(f.app.url("/oauth/token")).form(&form)
    };
    vec![
        (
            "registration",
            http.post(f.app.url("/oauth/register")).json(&json!({
                "client_name": "during the outage",
                "redirect_uris": [s.client.redirect],
            })),
        ),
        (
            "code exchange",
            token(vec![
                ("grant_type", "authorization_code"),
                ("code", &s.code.code),
                ("redirect_uri", &s.client.redirect),
                ("code_verifier", &s.code.verifier),
            ]),
        ),
        (
            "refresh",
            token(vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", &s.refresh),
            ]),
        ),
        (
            "introspection",
            http.post(f.app.url("/oauth/introspect"))
                .bearer_auth(INTROSPECTION_SECRET)
                .form(&[("token", s.access.as_str())]),
        ),
        (
            "gateway",
            http.post(f.app.url("/mcp"))
                .bearer_auth(&s.access)
                .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})),
        ),
    ]
}

/// Each request answers 503 `temporarily_unavailable` with `Retry-After`,
/// within the statement timeout and [`SLACK`].
async fn all_refused_in_time(requests: Vec<(&'static str, reqwest::RequestBuilder)>) {
    for (what, request) in requests {
        let asked = Instant::now();
        let res = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let took = asked.elapsed();
        let status = res.status().as_u16();
        let retry_after = res.headers().get("retry-after").cloned();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 503, "{what}: {body}");
        assert_eq!(body["error"], "temporarily_unavailable", "{what}: {body}");
        assert!(retry_after.is_some(), "{what}: no Retry-After: {body}");
        assert!(
            took < STATEMENT_TIMEOUT + SLACK,
            "{what} answered after {took:?}"
        );
        eprintln!("{what}: 503 after {took:?}");
    }
}

/// `/health/ready`'s status and how long it took.
async fn readiness(f: &Flow) -> (u16, Duration) {
    let asked = Instant::now();
    let res = f
        .app
        .client
        .get(f.app.url("/health/ready"))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), asked.elapsed())
}

/// Everything acknowledged before still works: the code is redeemed, the
/// pair refreshed, the access token active, and registration answers.
async fn all_still_work(f: &Flow, s: &SignedIn) {
    let (status, v) = f.exchange(&s.client, &s.code).await;
    assert_eq!(status, 200, "the code tried during the fault: {v}");
    let (status, v) = f.refresh(&s.client, &s.refresh).await;
    assert_eq!(status, 200, "the refresh token tried during the fault: {v}");
    assert_eq!(f.introspect(&s.access).await["active"], true);
    assert_eq!(f.gateway_ping(&s.access).await.status(), 200);
    f.register("client_secret_post").await;
}

#[actix_web::test]
async fn while_postgresql_is_down_requests_are_refused_quickly_and_service_resumes_by_itself() {
    let Some(postgres) = PrivateServer::start("the PostgreSQL fault tests").await else {
        return;
    };
    let f = drawbridge_on(&postgres.url).await;
    let s = sign_in(&f).await;
    assert_eq!(readiness(&f).await.0, 200);

    postgres.stop().await;
    all_refused_in_time(requests(&f, &s)).await;
    let (status, took) = readiness(&f).await;
    assert_eq!(status, 503, "ready while PostgreSQL is down");
    assert!(took < STATEMENT_TIMEOUT + SLACK, "readiness took {took:?}");

    postgres.resume().await;
    let back = Instant::now();
    while readiness(&f).await.0 != 200 {
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "not ready 10 s after PostgreSQL came back"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("ready {:?} after PostgreSQL came back", back.elapsed());
    all_still_work(&f, &s).await;
}

/// Rows of `tree` in the database.
async fn rows(db: &tokio_postgres::Client, tree: &str) -> i64 {
    db.query_one(
        "SELECT COUNT(*) FROM drawbridge_kv WHERE tree = $1",
        &[&tree],
    )
    .await
    .unwrap()
    .get(0)
}

#[actix_web::test]
async fn a_change_cancelled_by_the_statement_timeout_leaves_nothing_half_done() {
    let Some(server) = shared_server("the PostgreSQL fault tests") else {
        return;
    };
    let database = fresh_database(&server).await;
    let f = drawbridge_on(&database).await;
    let s = sign_in(&f).await;
    let (mut db, connection) = tokio_postgres::connect(&database, tokio_postgres::NoTls)
        .await
        .unwrap();
    actix_web::rt::spawn(connection);
    let grants = rows(&db, "grants").await;

    // Another session holds the codes and tokens: redeeming the code (its
    // grant and tokens are written first, the code last) and rotating the
    // refresh token wait for it until the statement timeout cancels them.
    let lock = db.transaction().await.unwrap();
    lock.execute(
        "SELECT 1 FROM drawbridge_kv WHERE tree IN ('codes', 'tokens') FOR UPDATE",
        &[],
    )
    .await
    .unwrap();
    let cancelled = requests(&f, &s)
        .into_iter()
        .filter(|(what, _)| matches!(*what, "code exchange" | "refresh"))
        .collect();
    all_refused_in_time(cancelled).await;
    lock.rollback().await.unwrap();

    assert_eq!(
        rows(&db, "grants").await,
        grants,
        "a cancelled code exchange left its grant behind"
    );
    all_still_work(&f, &s).await;
    assert_eq!(rows(&db, "grants").await, grants + 1);
}
