//! The gateway under attack: paths that climb out of the upstream path,
//! tokens of disabled or expired clients, forged and hop-by-hop headers,
//! bodies that never arrive, upgrades, and connection floods. Requests whose
//! exact bytes matter are written to a raw socket.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

use crate::helpers::ADMIN_TOKEN;
use crate::login_flow::{setup, Flow};

/// What the recording MCP server received: path (with query) and headers.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    headers: Vec<(String, String)>,
}

impl Seen {
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// An MCP server under `/base` that records every request it gets, and
/// answers with a cookie of its own.
fn recording_upstream() -> (String, Log) {
    let log: Log = Arc::default();
    let shared = log.clone();
    let server = HttpServer::new(move || {
        let log = shared.clone();
        App::new().default_service(web::to(move |req: HttpRequest, _body: web::Bytes| {
            let log = log.clone();
            async move {
                let path = match req.query_string() {
                    "" => req.path().to_owned(),
                    q => format!("{}?{q}", req.path()),
                };
                let headers = req
                    .headers()
                    .iter()
                    .map(|(n, v)| {
                        (
                            n.as_str().to_owned(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect();
                log.lock().unwrap().push(Seen { path, headers });
                HttpResponse::Ok()
                    .insert_header(("Set-Cookie", "upstream_session=abc; Path=/"))
                    .json(json!({"ok": true}))
            }
        }))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    actix_web::rt::spawn(server.run());
    (format!("http://127.0.0.1:{port}/base"), log)
}

/// An app in front of the recording upstream, and a signed-in client's access token.
async fn gateway_with(extra: &[(&str, &str)]) -> (Flow, Log, String) {
    let (upstream, log) = recording_upstream();
    let (f, access) = crate::gateway::signed_in_behind(&upstream, extra).await;
    (f, log, access)
}

fn port(f: &Flow) -> u16 {
    f.app.config.server.base_url.port().unwrap()
}

/// Writes `request` as is and reads until the server closes or `wait` passes.
async fn raw(port: u16, request: Vec<u8>, wait: Duration) -> String {
    actix_web::rt::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(wait)).unwrap();
        s.write_all(&request).unwrap();
        read_all(&mut s)
    })
    .await
    .unwrap()
}

/// Reads until the peer closes or the read time-out passes.
fn read_all(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn status_of(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn get(path: &str, token: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n").into_bytes()
}

#[actix_web::test]
async fn paths_that_climb_out_of_the_upstream_path_are_refused_and_never_reach_it() {
    let (f, log, access) = gateway_with(&[]).await;
    let port = port(&f);
    // (raw request path, what the MCP server must see; None: refused with 400)
    let table: &[(&str, Option<&str>)] = &[
        ("/mcp", Some("/base")),
        ("/mcp/", Some("/base")),
        ("/mcp/messages?x=1", Some("/base/messages?x=1")),
        ("/mcp/a..b", Some("/base/a..b")),
        ("/mcp/.well-known/x", Some("/base/.well-known/x")),
        ("/mcp/../internal/admin", None),
        ("/mcp/..", None),
        ("/mcp/./x", None),
        ("/mcp/a/../../x", None),
        ("/mcp/%2e%2e/x", None),
        ("/mcp/%2E%2E/%2E%2E/etc", None),
        ("/mcp/.%2e/x", None),
        ("/mcp/%2e./x", None),
        ("/mcp/..%5c..%5cx", None),
        ("/mcp/..%5C..%5Cx", None),
        ("/mcp/%252e%252e/x", None),
        ("/mcp/%252E%252E%252Fx", None),
        ("/mcp/%2e%2e%2fx", None),
        ("/mcp/..;/x", None),
        ("/mcp/x/%2e%2e", None),
        ("/%6dcp/../x", None),
    ];
    for (path, expected) in table {
        let res = raw(port, get(path, &access), Duration::from_secs(5)).await;
        let status = status_of(&res);
        match expected {
            Some(_) => assert_eq!(status, 200, "{path} is forwarded: {res}"),
            None => {
                assert_eq!(status, 400, "{path} is refused: {res}");
                let body: Value =
                    serde_json::from_str(res.split("\r\n\r\n").nth(1).unwrap_or("")).unwrap();
                assert_eq!(body["error"], "invalid_request", "{path}: {body}");
                assert!(body["error_description"].is_string());
            }
        }
    }
    // A raw backslash: refused wherever it is parsed, never forwarded.
    let res = raw(port, get("/mcp/..\\..\\x", &access), Duration::from_secs(5)).await;
    assert_eq!(status_of(&res), 400, "{res}");
    let seen: Vec<String> = log.lock().unwrap().iter().map(|s| s.path.clone()).collect();
    let wanted: Vec<String> = table
        .iter()
        .filter_map(|(_, e)| e.map(str::to_owned))
        .collect();
    assert_eq!(seen, wanted, "the MCP server saw exactly the allowed paths");
    assert!(seen.iter().all(|p| p == "/base" || p.starts_with("/base/")));
}

#[actix_web::test]
async fn a_clients_own_copy_of_the_upstream_token_header_is_never_forwarded() {
    let (f, log, access) = gateway_with(&[(
        "DRAWBRIDGE_GATEWAY__UPSTREAM_TOKEN_HEADER",
        "X-Google-Token",
    )])
    .await;
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {access}\r\n\
         X-Google-Token: forged\r\nx-google-token: forged-too\r\nX-GOOGLE-TOKEN: forged-three\r\n\
         Content-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    let res = raw(port(&f), request.into_bytes(), Duration::from_secs(5)).await;
    assert_eq!(status_of(&res), 200, "{res}");
    let seen = log.lock().unwrap().last().cloned().unwrap();
    let tokens = seen.all("x-google-token");
    assert_eq!(tokens.len(), 1, "exactly one value: {tokens:?}");
    assert!(
        tokens[0].starts_with("ya29.fake-access-"),
        "the real one: {tokens:?}"
    );
}

#[actix_web::test]
async fn cookies_forged_forwarding_headers_and_hop_by_hop_headers_stay_behind() {
    let (f, log, access) = gateway_with(&[]).await;
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {access}\r\n\
         Cookie: __Host-drawbridge=browser-secret; other=1\r\n\
         X-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6;proto=https\r\nX-Real-IP: 6.6.6.6\r\n\
         X-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: gopher\r\n\
         Connection: close, X-Secret\r\nX-Secret: hop-only\r\nKeep-Alive: timeout=5\r\n\
         Proxy-Connection: keep-alive\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\nTE: trailers\r\n\
         Trailer: X-Checksum\r\nMcp-Session-Id: s-1\r\nContent-Length: 2\r\n\r\n{{}}"
    );
    let res = raw(port(&f), request.into_bytes(), Duration::from_secs(5)).await;
    assert_eq!(status_of(&res), 200, "{res}");
    assert!(
        !res.to_ascii_lowercase().contains("set-cookie"),
        "the MCP server's cookies are not set on Drawbridge's origin: {res}"
    );
    let seen = log.lock().unwrap().last().cloned().unwrap();
    for name in [
        "cookie",
        "forwarded",
        "x-real-ip",
        "x-secret",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "te",
        "trailer",
    ] {
        assert!(
            seen.all(name).is_empty(),
            "{name} reached the MCP server: {:?}",
            seen.headers
        );
    }
    assert_eq!(seen.all("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(seen.all("x-forwarded-proto"), ["http"]);
    let host = format!("127.0.0.1:{}", port(&f));
    assert_eq!(seen.all("x-forwarded-host"), [host.as_str()]);
    assert_eq!(
        seen.all("mcp-session-id"),
        ["s-1"],
        "end-to-end headers pass"
    );
}

#[actix_web::test]
async fn behind_a_trusted_proxy_the_peer_is_appended_to_the_forwarded_chain() {
    let (f, log, access) =
        gateway_with(&[("DRAWBRIDGE_RATE_LIMIT__TRUSTED_PROXIES", "127.0.0.1")]).await;
    let res = f
        .app
        .client
        .post(f.app.url("/mcp"))
        .bearer_auth(&access)
        .header("X-Forwarded-For", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let seen = log.lock().unwrap().last().cloned().unwrap();
    assert_eq!(seen.all("x-forwarded-for"), ["203.0.113.9, 127.0.0.1"]);
}

async fn admin(f: &Flow, path: &str) -> u16 {
    f.app
        .client
        .post(f.app.url(path))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn mcp_status(f: &Flow, access: &str) -> (u16, String) {
    let res = f
        .app
        .client
        .post(f.app.url("/mcp"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (res.status().as_u16(), challenge)
}

#[actix_web::test]
async fn disabling_a_client_stops_its_access_tokens_at_once_and_enabling_restores_them() {
    let (f, _, access) = gateway_with(&[]).await;
    assert_eq!(mcp_status(&f, &access).await.0, 200);
    assert_eq!(f.introspect(&access).await["active"], true);
    let client_id = f.introspect(&access).await["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        admin(&f, &format!("/admin/v1/clients/{client_id}/disable")).await,
        200
    );
    let (status, challenge) = mcp_status(&f, &access).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert_eq!(f.introspect(&access).await, json!({"active": false}));
    // Disabling suspends: an operator who enables the client again gives
    // back the tokens that have not expired meanwhile.
    assert_eq!(
        admin(&f, &format!("/admin/v1/clients/{client_id}/enable")).await,
        200
    );
    assert_eq!(mcp_status(&f, &access).await.0, 200);
    assert_eq!(f.introspect(&access).await["active"], true);
}

#[actix_web::test]
async fn an_expired_clients_access_tokens_stop_working() {
    // Clients expire an hour after their last use; tokens live a day.
    let (f, _, access) = gateway_with(&[
        ("DRAWBRIDGE_CLIENTS__EXPIRY_HOURS", "1"),
        ("DRAWBRIDGE_OAUTH__ACCESS_TOKEN_MINUTES", "1440"),
    ])
    .await;
    assert_eq!(mcp_status(&f, &access).await.0, 200);
    f.app.clock.advance(3600 + 60);
    let (status, challenge) = mcp_status(&f, &access).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert_eq!(f.introspect(&access).await, json!({"active": false}));
}

#[actix_web::test]
async fn bodies_that_never_come_do_not_hold_connections_and_health_stays_up() {
    let (f, _, _) = gateway_with(&[
        ("DRAWBRIDGE_SERVER__BODY_READ_TIMEOUT_SECONDS", "2"),
        ("DRAWBRIDGE_SERVER__MAX_CONNECTIONS_PER_ADDRESS", "1000"),
    ])
    .await;
    let port = port(&f);
    let started = Instant::now();
    // 300 unauthenticated requests that announce a body and never send it;
    // a tenth announce a chunked body and trickle nothing more.
    let mut sockets = Vec::new();
    for i in 0..300 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let head = if i % 10 == 0 {
            "POST /mcp HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n"
        } else {
            "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
        };
        s.write_all(head.as_bytes()).unwrap();
        sockets.push(s);
    }
    let health = f
        .app
        .client
        .get(f.app.url("/health/live"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .expect("/health/live answers while the connections are open");
    assert_eq!(health.status(), 200);
    let answers = actix_web::rt::task::spawn_blocking(move || {
        sockets
            .iter_mut()
            .map(|s| {
                // All of them within 5 s of the first request.
                let left = Duration::from_secs(5).saturating_sub(started.elapsed());
                s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
                    .unwrap();
                let res = read_all(s);
                (status_of(&res), res)
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for (i, (status, res)) in answers.iter().enumerate() {
        assert_eq!(*status, 401, "connection {i}: {res}");
        assert!(
            res.to_ascii_lowercase().contains("connection: close"),
            "connection {i} is closed after the answer: {res}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered and closed within seconds: {:?}",
        started.elapsed()
    );
}

/// Sends the head, then one body byte every `every` until the server
/// answers; the answer and the time it took.
async fn trickle(port: u16, head: String, every: Duration) -> (String, Duration) {
    actix_web::rt::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(head.as_bytes()).unwrap();
        s.set_read_timeout(Some(every)).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while started.elapsed() < Duration::from_secs(8) {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(_) if out.is_empty() => {
                    let _ = s.write_all(b" ");
                }
                Err(_) => break,
            }
        }
        (
            String::from_utf8_lossy(&out).into_owned(),
            started.elapsed(),
        )
    })
    .await
    .unwrap()
}

#[actix_web::test]
async fn a_body_sent_a_byte_at_a_time_is_cut_off_with_408() {
    let (f, _, access) =
        gateway_with(&[("DRAWBRIDGE_SERVER__BODY_READ_TIMEOUT_SECONDS", "1")]).await;
    let port = port(&f);
    let heads = [
        format!(
            "POST /mcp HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {access}\r\n\
             Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{{"
        ),
        "POST /oauth/register HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{".to_owned(),
        "POST /oauth/token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 500\r\n\r\ng".to_owned(),
    ];
    for head in heads {
        let first_line = head.lines().next().unwrap().to_owned();
        let (res, took) = trickle(port, head, Duration::from_millis(200)).await;
        assert_eq!(status_of(&res), 408, "{first_line}: {res}");
        assert!(
            res.to_ascii_lowercase().contains("connection: close"),
            "{res}"
        );
        let body: Value = serde_json::from_str(res.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(body["error"], "invalid_request");
        assert!(took < Duration::from_secs(3), "{first_line}: {took:?}");
    }
}

#[actix_web::test]
async fn a_websocket_upgrade_at_the_gateway_is_answered_at_once() {
    let (f, log, access) = gateway_with(&[]).await;
    let port = port(&f);
    for auth in [String::new(), format!("Authorization: Bearer {access}\r\n")] {
        let request = format!(
            "GET /mcp HTTP/1.1\r\nHost: localhost\r\n{auth}Upgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        let started = Instant::now();
        let res = raw(port, request.into_bytes(), Duration::from_secs(3)).await;
        assert_eq!(status_of(&res), 400, "{res}");
        assert!(res.contains("\"error\":\"invalid_request\""), "{res}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    assert!(log.lock().unwrap().is_empty(), "nothing was forwarded");
}

#[actix_web::test]
async fn connections_over_the_per_address_cap_are_refused() {
    let f = setup(&[("DRAWBRIDGE_SERVER__MAX_CONNECTIONS_PER_ADDRESS", "4")]).await;
    let port = port(&f);
    let keep_alive = b"GET /health/live HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let held = actix_web::rt::task::spawn_blocking(move || {
        (0..4)
            .map(|_| {
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
                s.write_all(keep_alive).unwrap();
                let mut buf = [0u8; 4096];
                let n = s.read(&mut buf).unwrap();
                assert_eq!(status_of(&String::from_utf8_lossy(&buf[..n])), 200);
                s
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let close = b"GET /health/live HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let res = raw(port, close.to_vec(), Duration::from_secs(3)).await;
    assert_eq!(
        status_of(&res),
        429,
        "the fifth connection is refused: {res}"
    );
    assert!(res.to_ascii_lowercase().contains("connection: close"));
    assert!(res.contains("temporarily_unavailable"), "{res}");
    // Once one of the four closes, a new connection is served again.
    let mut held = held;
    drop(held.pop());
    let mut status = 0;
    for _ in 0..50 {
        status = status_of(&raw(port, close.to_vec(), Duration::from_secs(3)).await);
        if status == 200 {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 200);
}

#[actix_web::test]
async fn a_later_request_whose_head_trickles_on_a_kept_alive_connection_is_cut_off() {
    let f = setup(&[("DRAWBRIDGE_SERVER__HEAD_READ_TIMEOUT_SECONDS", "1")]).await;
    let port = port(&f);
    let (first, closed_after) = actix_web::rt::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"GET /health/live HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).unwrap();
        let first = String::from_utf8_lossy(&buf[..n]).into_owned();
        // The next request starts at once, then comes a byte every 200 ms.
        let started = Instant::now();
        s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let next = b"GET /health/live HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        for byte in next.iter().cycle() {
            if started.elapsed() > Duration::from_secs(8) {
                return (first, None);
            }
            if s.write_all(&[*byte]).is_err() {
                break;
            }
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => break,
            }
        }
        (first, Some(started.elapsed()))
    })
    .await
    .unwrap();
    assert_eq!(status_of(&first), 200, "{first}");
    let took = closed_after.expect("the connection was still open after 8 s");
    assert!(took < Duration::from_secs(3), "closed after {took:?}");
}
