//! Attacks on the limits and the request surface (issue: security
//! hardening), each performed the way an attacker would: over HTTP, and over
//! raw sockets where the exact bytes of the path or method matter.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

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

#[actix_web::test]
async fn wrong_secrets_from_a_stranger_never_lock_the_real_client_out() {
    let flow = crate::login_flow::setup(&[]).await;
    let confidential = flow.register("client_secret_post").await;
    let public = flow.register("none").await;
    let (status, pair) = flow
        .exchange(&confidential, &flow.login(&confidential).await)
        .await;
    assert_eq!(status, 200, "{pair}");
    let public_login = flow.login(&public).await;
    // Twelve failures from one party, who knows both client ids (they are
    // not secret: they travel in browser URLs).
    let attack = |client_id: String| {
        flow.app
            .client
            .post(flow.app.url("/oauth/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", "mcp_rt_guess"),
                ("client_id", client_id.as_str()),
                ("client_secret", "mcp_cs_wrong"),
            ])
            .send()
    };
    for client in [&confidential, &public] {
        let mut statuses = Vec::new();
        for _ in 0..12 {
            statuses.push(attack(client.id.clone()).await.unwrap().status().as_u16());
        }
        assert!(
            statuses.iter().all(|s| *s == 401 || *s == 429),
            "{statuses:?}"
        );
        // The last ones were answered with the lock-out.
        assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    }
    // ...but the real clients, whose credentials verify, are served.
    let rt = pair["refresh_token"].as_str().unwrap();
    let (status, body) = flow.refresh(&confidential, rt).await;
    assert_eq!(status, 200, "the real client's refresh was refused: {body}");
    let (status, body) = flow.exchange(&public, &public_login).await;
    assert_eq!(
        status, 200,
        "the public client's code exchange was refused: {body}"
    );
}

#[actix_web::test]
async fn a_wrong_admin_token_from_one_address_does_not_lock_out_the_operator() {
    let app = spawn_app_with(&[("DRAWBRIDGE_RATE_LIMIT__TRUSTED_PROXIES", "127.0.0.1")]).await;
    let admin = |token: &str, ip: &str| {
        app.client
            .get(app.url("/admin/v1/stats"))
            .bearer_auth(token)
            .header("X-Forwarded-For", ip)
            .send()
    };
    for _ in 0..12 {
        let status = admin("wrong-token-guess", "203.0.113.9")
            .await
            .unwrap()
            .status();
        assert!(status == 401 || status == 429, "{status}");
    }
    assert_eq!(
        admin("wrong-token-guess", "203.0.113.9")
            .await
            .unwrap()
            .status(),
        429
    );
    for ip in ["198.51.100.4", "203.0.113.9"] {
        let res = admin(crate::helpers::ADMIN_TOKEN, ip).await.unwrap();
        assert_eq!(res.status(), 200, "the operator at {ip} was locked out");
    }
}

/// The number of time series `/metrics` exports.
async fn series(app: &TestApp) -> std::collections::BTreeSet<String> {
    app.metrics()
        .await
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.rsplit_once(' ').map(|(name, _)| name.to_owned()))
        .collect()
}

#[actix_web::test]
async fn odd_methods_and_paths_add_no_metric_series() {
    let app = spawn_app_with(&[]).await;
    for i in 0..200 {
        let head = format!("M{i:06}XXXX /health/live HTTP/1.1");
        raw_async(&app, head, Vec::new()).await;
        let head = format!("GET /probe-{i}/%2e%2e/x?a={i} HTTP/1.1");
        raw_async(&app, head, Vec::new()).await;
    }
    // The registry is shared by every test in this process, so this looks
    // at label values rather than counting series: a label a client
    // controls would show its values here.
    let all = series(&app).await;
    let leaked: Vec<&String> = all
        .iter()
        .filter(|s| s.contains("XXXX") || s.contains("probe-"))
        .collect();
    assert!(
        leaked.is_empty(),
        "client input became series: {:?}",
        &leaked[..leaked.len().min(3)]
    );
    let methods = [
        "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE", "other",
    ];
    for s in &all {
        if let Some(rest) = s.split("method=\"").nth(1) {
            let method = &rest[..rest.find('"').unwrap()];
            assert!(methods.contains(&method), "method label {method} in {s}");
        }
    }
    assert!(
        all.iter().any(|s| s.contains("method=\"other\"")),
        "odd methods are counted as other"
    );
}

#[actix_web::test]
async fn the_request_log_shows_no_upstream_code_and_no_forged_client_address() {
    let flow = crate::login_flow::setup(&[]).await;
    let client = flow.register("none").await;
    // The browser claims another address; the server has no trusted proxy.
    let (res, _verifier) = flow.authorize(&client, &[]).await;
    let page = res.text().await.unwrap();
    let consent = crate::login_flow::hidden(&page, "state");
    let landed = flow.consent(&page, "approve").await;
    let code = landed
        .url()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned());
    assert!(code.is_some(), "the sign-in completed");
    let forged = flow
        .app
        .client
        .get(flow.app.url("/health/live?probe=forged-address-check"))
        .header("X-Forwarded-For", "198.51.100.77")
        .header("X-Real-IP", "198.51.100.77")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 200);
    let logs = crate::helpers::captured_logs();
    let callbacks: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("/oauth/callback") && l.contains("http.target"))
        .collect();
    assert!(!callbacks.is_empty(), "the callback request was logged");
    for line in &callbacks {
        assert!(
            !line.contains("code="),
            "the upstream code reached the log: {line}"
        );
        assert!(
            !line.contains("state="),
            "the upstream state reached the log: {line}"
        );
    }
    assert!(
        !logs.contains(&consent),
        "the transaction state reached the log"
    );
    assert!(
        !logs.contains("198.51.100.77"),
        "an unchecked X-Forwarded-For became the logged client address"
    );
}

#[actix_web::test]
async fn redirect_uris_with_browser_and_system_schemes_are_refused() {
    let app = spawn_app_with(&[]).await;
    let register = |uri: &str| {
        let mut body = sample_registration();
        body["redirect_uris"] = serde_json::json!([uri]);
        body
    };
    for uri in [
        "chrome://settings/",
        "mailto:victim@example.com",
        "itms-services://?action=download-manifest&url=https://evil.example/x.plist",
        "ms-settings:privacy",
        "jar:https://evil.example/x.jar!/",
        "intent://scan/#Intent;scheme=zxing;end",
        "tel:+15555550100",
        "x:/cb",
    ] {
        let (status, body) = app.register(&register(uri)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_redirect_uri")),
            "{uri}: {body}"
        );
    }
    for uri in [
        "com.example.app:/oauth2redirect",
        "cursor://anysphere.cursor-retrieval/oauth/user-callback",
        "vscode://vscode.github-authentication/did-authenticate",
    ] {
        let (status, body) = app.register(&register(uri)).await;
        assert_eq!(status, 201, "{uri}: {body}");
    }
    // The operator can name another app scheme in the allowlist.
    let app = spawn_app_with(&[(
        "DRAWBRIDGE_OAUTH__ALLOWED_REDIRECT_URIS",
        "myapp:/callback,https://claude.ai/*",
    )])
    .await;
    let (status, body) = app.register(&register("myapp:/callback")).await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = app.register(&register("otherapp:/callback")).await;
    assert_eq!(status, 400);
}

#[test]
fn a_start_up_error_after_storage_opens_is_one_line_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let admin = taken.local_addr().unwrap().to_string();
    let key = dir.path().join("key");
    let mut child = crate::binary::drawbridge(
        dir.path(),
        &[
            ("MCP_PORT", "0"),
            ("UPSTREAM_PROVIDER", "dev"),
            ("CREDENTIALS_DIR", dir.path().join("data").to_str().unwrap()),
            ("AUTH_ENCRYPTION_KEY_FILE", key.to_str().unwrap()),
            (
                "DRAWBRIDGE_ADMIN_TOKEN",
                "admin-token-for-the-start-up-test",
            ),
            ("DRAWBRIDGE_ADMIN__LISTEN", &admin),
        ],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success());
    assert!(
        !stderr.contains("panicked"),
        "a panic instead of an error: {stderr}"
    );
    assert!(
        stderr.contains(&format!("cannot listen on {admin}")),
        "{stderr}"
    );
    drop(taken);
}

#[actix_web::test]
async fn a_registration_flood_from_one_address_never_keeps_another_address_out() {
    let app = spawn_app_with(&[
        ("MAX_PROXY_CLIENTS", "50"),
        ("MAX_REGISTRATIONS_PER_MINUTE", "1000"),
        ("DRAWBRIDGE_RATE_LIMIT__REGISTRATION_BURST", "1000"),
        ("DRAWBRIDGE_RATE_LIMIT__TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let register_from = |ip: &str| {
        app.client
            .post(app.url("/oauth/register"))
            .header("X-Forwarded-For", ip)
            .json(&sample_registration())
            .send()
    };
    // The flood: one address registers as fast as its rate limit allows,
    // and never signs in.
    let mut created = Vec::new();
    let mut refused = None;
    for _ in 0..40 {
        let res = register_from("203.0.113.50").await.unwrap();
        if res.status() == 201 {
            let body: serde_json::Value = res.json().await.unwrap();
            created.push(body["client_id"].as_str().unwrap().to_owned());
            app.clock.advance(1);
        } else {
            refused = Some(res);
            break;
        }
    }
    let refused = refused.expect("the flooding address hits its cap");
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(
        created.len(),
        20,
        "the default cap of never-used registrations per address"
    );
    // Rotating through one IPv6 /64 is the same address.
    for host in 1..=20 {
        let res = register_from(&format!("2001:db8:7:7::{host:x}"))
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    assert_eq!(
        register_from("2001:db8:7:7:ffff::1")
            .await
            .unwrap()
            .status(),
        429
    );
    // Another address still registers.
    let res = register_from("198.51.100.20").await.unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());

    // Many addresses together fill the registry (50): a newcomer is refused
    // while every registration held is fresh…
    for i in 0..9 {
        let res = register_from(&format!("192.0.2.{i}")).await.unwrap();
        assert_eq!(res.status(), 201);
    }
    assert_eq!(app.client_count().await, 50);
    assert_eq!(register_from("198.51.100.21").await.unwrap().status(), 503);
    // …and once they are a few minutes old, the oldest never-used one makes
    // room instead of the newcomer being refused.
    app.clock.advance(6 * 60);
    let res = register_from("198.51.100.21").await.unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    assert_eq!(app.client_count().await, 50);
    let admin = |id: &str| {
        app.client
            .get(app.url(&format!("/admin/v1/clients/{id}")))
            .bearer_auth(crate::helpers::ADMIN_TOKEN)
            .send()
    };
    assert_eq!(
        admin(&created[0]).await.unwrap().status(),
        404,
        "the oldest never-used registration was evicted"
    );
    assert_eq!(admin(&created[1]).await.unwrap().status(), 200, "only one");
    let logs = crate::helpers::captured_logs();
    assert!(logs
        .lines()
        .any(|l| l.contains("client_evicted") && l.contains(&created[0])));
}

/// An MCP server that refuses every request with its own challenge, naming
/// another authorization server.
fn refusing_upstream() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(50) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 16384];
            let _ = stream.read(&mut buf);
            let body = r#"{"error":"invalid_token"}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer resource_metadata=\"https://evil.example/.well-known/oauth-protected-resource\"\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    address
}

#[actix_web::test]
async fn an_mcp_servers_own_challenge_never_sends_the_client_to_another_authorization_server() {
    let upstream = refusing_upstream();
    let flow = crate::login_flow::setup(&[("GATEWAY_UPSTREAM_URL", upstream.as_str())]).await;
    let client = flow.register("none").await;
    let (status, pair) = flow.exchange(&client, &flow.login(&client).await).await;
    assert_eq!(status, 200, "{pair}");
    let res = flow
        .app
        .client
        .post(flow.app.url("/mcp"))
        .bearer_auth(pair["access_token"].as_str().unwrap())
        .header("content-type", "application/json")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let challenges: Vec<String> = res
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(challenges.len(), 1, "{challenges:?}");
    assert!(!challenges[0].contains("evil.example"), "{challenges:?}");
    assert!(
        challenges[0].contains(&flow.app.url("/.well-known/oauth-protected-resource")),
        "the client is sent back to this server: {challenges:?}"
    );
    assert!(
        challenges[0].contains("error=\"invalid_token\""),
        "{challenges:?}"
    );
}
