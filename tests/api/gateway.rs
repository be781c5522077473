//! The MCP gateway in front of a fake MCP server.

use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

use crate::login_flow::{setup, Flow, INTROSPECTION_SECRET};

/// A stand-in MCP server: echoes what it received; streams events slowly.
pub fn fake_mcp() -> String {
    async fn echo(req: HttpRequest, body: web::Bytes) -> HttpResponse {
        let h = |n: &str| {
            req.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        HttpResponse::Ok().insert_header(("Mcp-Session-Id", "session-from-upstream")).json(json!({
            "path": req.path(), "query": req.query_string(), "method": req.method().as_str(),
            "authorization": h("authorization"), "user": h("x-drawbridge-user"), "client": h("x-drawbridge-client"),
            "session": h("mcp-session-id"), "connection": h("connection"), "body": String::from_utf8_lossy(&body),
        }))
    }
    async fn events() -> HttpResponse {
        let stream = futures_util::stream::unfold(0u8, |n| async move {
            match n {
                0 => Some((
                    Ok::<_, actix_web::Error>(web::Bytes::from_static(
                        b"event: message\ndata: first\n\n",
                    )),
                    1,
                )),
                1 => {
                    actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
                    Some((
                        Ok(web::Bytes::from_static(b"event: message\ndata: second\n\n")),
                        2,
                    ))
                }
                _ => None,
            }
        });
        HttpResponse::Ok()
            .content_type("text/event-stream")
            .streaming(stream)
    }
    async fn slow() -> HttpResponse {
        actix_web::rt::time::sleep(Duration::from_secs(3)).await;
        HttpResponse::Ok().finish()
    }
    let server = HttpServer::new(|| {
        App::new()
            .route("/events", web::get().to(events))
            .route("/slow", web::post().to(slow))
            .default_service(web::to(echo))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    actix_web::rt::spawn(server.run());
    format!("http://127.0.0.1:{port}")
}

async fn gateway(extra: &[(&str, &str)]) -> (Flow, String) {
    signed_in_behind(&fake_mcp(), extra).await
}

/// An app whose gateway forwards to `upstream`, and a signed-in client's
/// access token.
pub async fn signed_in_behind(upstream: &str, extra: &[(&str, &str)]) -> (Flow, String) {
    let mut vars = vec![
        ("GATEWAY_UPSTREAM_URL", upstream),
        (
            "DRAWBRIDGE_OAUTH__INTROSPECTION_SECRET",
            INTROSPECTION_SECRET,
        ),
    ];
    vars.extend_from_slice(extra);
    let f = setup(&vars).await;
    let client = f.register("client_secret_post").await;
    let login = f.login(&client).await;
    let (status, tokens) = f.exchange(&client, &login).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    crate::helpers::remember_secret(&access);
    (f, access)
}

#[actix_web::test]
async fn without_a_valid_token_the_gateway_answers_401_with_the_resource_metadata() {
    let (f, _) = gateway(&[]).await;
    let res = f
        .app
        .client
        .post(f.app.url("/mcp"))
        .json(&json!({"jsonrpc": "2.0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    let metadata = format!(
        "{}/.well-known/oauth-protected-resource/mcp",
        f.app.config.issuer()
    );
    assert!(
        challenge.starts_with(&format!("Bearer resource_metadata=\"{metadata}\"")),
        "{challenge}"
    );
    assert!(
        challenge.contains("scope=\"openid email profile"),
        "{challenge}"
    );
    assert!(
        !challenge.contains("error="),
        "no error when no token was sent"
    );
    assert_eq!(
        f.app.client.get(&metadata).send().await.unwrap().status(),
        200
    );
    let res = f
        .app
        .client
        .post(f.app.url("/mcp"))
        .bearer_auth("mcp_at_unknown")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("error=\"invalid_token\""));
}

#[actix_web::test]
async fn a_valid_token_reaches_the_mcp_server_as_the_users_google_token() {
    let (f, access) = gateway(&[]).await;
    let res = f
        .app
        .client
        .post(f.app.url("/mcp/tools?x=1"))
        .bearer_auth(&access)
        .header("Mcp-Session-Id", "session-from-client")
        .header("Connection", "keep-alive, x-secret-hop")
        .json(&json!({"jsonrpc": "2.0", "method": "tools/list", "id": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["mcp-session-id"], "session-from-upstream");
    let seen: Value = res.json().await.unwrap();
    let auth = seen["authorization"].as_str().unwrap();
    assert!(
        auth.starts_with("Bearer ya29.fake-access-"),
        "the upstream gets Google's token: {auth}"
    );
    assert!(
        !seen.to_string().contains(&access),
        "the client's token is never forwarded"
    );
    assert_eq!(seen["user"], crate::fake_google::EMAIL);
    assert!(seen["client"].as_str().unwrap().starts_with("mcp_"));
    assert_eq!(seen["session"], "session-from-client");
    assert_eq!(seen["path"], "/tools");
    assert_eq!(seen["query"], "x=1");
    assert!(seen["body"].as_str().unwrap().contains("tools/list"));
    assert!(
        seen["connection"].is_null()
            || !seen["connection"]
                .as_str()
                .unwrap()
                .contains("x-secret-hop")
    );
    // DELETE ends a session, GET works too.
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let res = f
            .app
            .client
            .request(method.clone(), f.app.url("/mcp"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{method}");
    }
}

#[actix_web::test]
async fn a_revocation_takes_effect_on_the_very_next_request() {
    let (f, access) = gateway(&[]).await;
    assert_eq!(
        f.app
            .client
            .post(f.app.url("/mcp"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let admin = f
        .app
        .client
        .post(f.app.url("/admin/v1/tokens/revoke"))
        .bearer_auth(crate::helpers::ADMIN_TOKEN)
        .json(&json!({"token": access}))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 200);
    let res = f
        .app
        .client
        .post(f.app.url("/mcp"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[actix_web::test]
async fn a_token_without_a_required_scope_gets_403_insufficient_scope() {
    let (f, access) = gateway(&[(
        "DRAWBRIDGE_GATEWAY__REQUIRED_SCOPES",
        "https://www.googleapis.com/auth/calendar.events",
    )])
    .await;
    let res = f
        .app
        .client
        .post(f.app.url("/mcp"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let challenge = res.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(
        challenge.contains("scope=\"https://www.googleapis.com/auth/calendar.events\""),
        "{challenge}"
    );
}

#[actix_web::test]
async fn server_sent_events_stream_through_without_buffering() {
    let (f, access) = gateway(&[]).await;
    let started = Instant::now();
    let mut res = f
        .app
        .client
        .get(f.app.url("/mcp/events"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let first = res.chunk().await.unwrap().unwrap();
    let first_at = started.elapsed();
    assert!(String::from_utf8_lossy(&first).contains("data: first"));
    assert!(
        first_at < Duration::from_millis(1200),
        "the first event waited for the stream to end: {first_at:?}"
    );
    let mut rest = Vec::new();
    while let Some(chunk) = res.chunk().await.unwrap() {
        rest.extend_from_slice(&chunk);
    }
    assert!(String::from_utf8_lossy(&rest).contains("data: second"));
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "the upstream really was still streaming"
    );
}

#[actix_web::test]
async fn an_unreachable_mcp_server_is_502_and_a_slow_one_504() {
    let (f, access) = gateway(&[("DRAWBRIDGE_GATEWAY__RESPONSE_TIMEOUT_MS", "500")]).await;
    let res = f
        .app
        .client
        .post(f.app.url("/mcp/slow"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 504);
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = format!("http://127.0.0.1:{dead}");
    let f = setup(&[("GATEWAY_UPSTREAM_URL", down.as_str())]).await;
    let client = f.register("none").await;
    let login = f.login(&client).await;
    let (_, tokens) = f.exchange(&client, &login).await;
    let res = f
        .app
        .client
        .post(f.app.url("/mcp"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 502);
    let metrics = f.app.metrics().await;
    assert!(metrics.contains("drawbridge_gateway_requests_total{outcome=\"unreachable\"}"));
    assert!(metrics.contains("drawbridge_gateway_requests_total{outcome=\"timeout\"}"));
}

#[actix_web::test]
async fn a_google_token_near_expiry_is_refreshed_before_forwarding() {
    let upstream = fake_mcp();
    let f = setup(&[("GATEWAY_UPSTREAM_URL", upstream.as_str())]).await;
    f.google.set_expires_in(30);
    let client = f.register("none").await;
    let login = f.login(&client).await;
    let (_, tokens) = f.exchange(&client, &login).await;
    let access = tokens["access_token"].as_str().unwrap();
    let before = f.google.with(|s| s.refreshes);
    let seen: Value = f
        .app
        .client
        .post(f.app.url("/mcp"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(f.google.with(|s| s.refreshes), before + 1);
    assert!(seen["authorization"]
        .as_str()
        .unwrap()
        .starts_with("Bearer ya29.fake-access-"));
    // Google refuses the refresh (access withdrawn): the client must sign in again.
    f.app.clock.advance(60);
    f.google.set_mode(crate::fake_google::Mode::TokenError(
        400,
        json!({"error": "invalid_grant"}),
    ));
    let res = f
        .app
        .client
        .post(f.app.url("/mcp"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}
