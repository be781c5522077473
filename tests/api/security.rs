//! Attacks on the limits and the request surface (issue: security
//! hardening), each performed the way an attacker would: over HTTP, and over
//! raw sockets where the exact bytes of the path or method matter.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{sample_registration, spawn_app_with, TestApp};

/// Sends `head` (request line and headers, without the blank line) and
/// `body` exactly as written; answers the status and the whole response.
pub fn raw(address: &str, head: &str, body: &[u8]) -> (u16, String) {
    let port = address.rsplit(':').next().unwrap();
    let mut s = TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "{head}\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    s.write_all(&req).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

async fn raw_async(app: &TestApp, head: String, body: Vec<u8>) -> (u16, String) {
    let address = app.address.clone();
    actix_web::rt::task::spawn_blocking(move || raw(&address, &head, &body))
        .await
        .unwrap()
}

#[actix_web::test]
async fn percent_encoded_spellings_of_a_limited_path_share_its_rate_limit() {
    let app = spawn_app_with(&[
        ("MAX_REGISTRATIONS_PER_MINUTE", "3"),
        ("DRAWBRIDGE_RATE_LIMIT__REGISTRATION_BURST", "3"),
        ("DRAWBRIDGE_RATE_LIMIT__TOKEN_PER_MINUTE", "4"),
        ("DRAWBRIDGE_RATE_LIMIT__AUTHORIZE_PER_MINUTE", "4"),
    ])
    .await;
    let registration = serde_json::to_vec(&sample_registration()).unwrap();
    let register = |path: &str| format!("POST {path} HTTP/1.1\r\nContent-Type: application/json");
    // The plain path runs out of quota...
    for _ in 0..3 {
        let (status, text) =
            raw_async(&app, register("/oauth/register"), registration.clone()).await;
        assert_eq!(status, 201, "{text}");
    }
    let (status, _) = raw_async(&app, register("/oauth/register"), registration.clone()).await;
    assert_eq!(status, 429);
    // ...and no other spelling of it gets through.
    for path in [
        "/oauth/regist%65r",
        "/oauth/%72egister",
        "/register",
        "/regist%65r",
        "/%6fauth/register",
    ] {
        let (status, text) = raw_async(&app, register(path), registration.clone()).await;
        assert_eq!(
            status, 429,
            "{path} got through the registration limit: {text}"
        );
    }
    assert_eq!(
        app.client_count().await,
        3,
        "nothing past the quota was stored"
    );

    let form = b"grant_type=refresh_token&refresh_token=x&client_id=mcp_x".to_vec();
    let token = |path: &str| {
        format!("POST {path} HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded")
    };
    exhaust(&app, token("/oauth/token"), &form).await;
    for path in [
        "/oauth/t%6fken",
        "/oauth/%74oken",
        "/token",
        "/t%6Fken",
        "/%6Fauth/token",
    ] {
        let (status, text) = raw_async(&app, token(path), form.clone()).await;
        assert_eq!(status, 429, "{path} got through the token limit: {text}");
    }

    let authorize = |path: &str| format!("GET {path}?client_id=mcp_x HTTP/1.1");
    exhaust(&app, authorize("/oauth/authorize"), &[]).await;
    for path in [
        "/oauth/%61uthorize",
        "/%61uthorize",
        "/authorize",
        "/oauth/%61uthoriz%65",
    ] {
        let (status, text) = raw_async(&app, authorize(path), Vec::new()).await;
        assert_eq!(
            status, 429,
            "{path} got through the authorize limit: {text}"
        );
    }
}

/// Sends `head` until the server answers 429 (within a bounded number of tries).
async fn exhaust(app: &TestApp, head: String, body: &[u8]) {
    for _ in 0..20 {
        let (status, _) = raw_async(app, head.clone(), body.to_vec()).await;
        if status == 429 {
            return;
        }
    }
    panic!("{head} was never rate limited");
}
