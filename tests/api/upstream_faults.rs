//! Upstream faults: Google's token endpoint down, slow, answering 500,
//! answering nonsense, or resetting the connection — at sign-in (code
//! exchange) and at refresh. Every request gets an RFC error within a
//! bounded time, nothing is stored half-way, each case is counted in the
//! metrics under its own outcome, and service resumes by itself when the
//! upstream does.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::fake_google::Mode;
use crate::helpers::ADMIN_TOKEN;
use crate::login_flow::{setup, Client, Flow, INTROSPECTION_SECRET};

/// What the TCP switch in front of the fake Google's token endpoint does.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Wire {
    Pass,
    /// Accept, then close with the request unread: the client sees a reset.
    Reset,
}

/// A TCP switch on a reserved port; until `listen` is called nothing
/// listens there (the upstream is down: connection refused).
struct Switch {
    port: u16,
    target: u16,
    wire: Arc<Mutex<Wire>>,
}

impl Switch {
    fn reserve(target: u16) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self {
            port,
            target,
            wire: Arc::new(Mutex::new(Wire::Pass)),
        }
    }

    fn set(&self, wire: Wire) {
        *self.wire.lock().unwrap() = wire;
    }

    fn listen(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        let (wire, target) = (self.wire.clone(), self.target);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let mode = *wire.lock().unwrap();
                let wire = wire.clone();
                std::thread::spawn(move || match mode {
                    Wire::Reset => {
                        std::thread::sleep(Duration::from_millis(20));
                        drop(conn);
                    }
                    Wire::Pass => pipe(conn, target, wire),
                });
            }
        });
    }
}

/// Relays one connection; a request that arrives on a kept-alive
/// connection after the switch went to `Reset` is cut off too.
fn pipe(client: TcpStream, target: u16, wire: Arc<Mutex<Wire>>) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
        return;
    };
    let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    std::thread::spawn(move || {
        let (mut from, mut to) = (c2, s2);
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            if *wire.lock().unwrap() == Wire::Reset {
                let _ = from.shutdown(std::net::Shutdown::Both);
                let _ = to.shutdown(std::net::Shutdown::Both);
                return;
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
    std::thread::spawn(move || {
        let (mut from, mut to) = (server, client);
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
}

fn upstream_count(endpoint: &str, outcome: &str) -> u64 {
    drawbridge::metrics::METRICS
        .upstream_requests
        .with_label_values(&[endpoint, outcome])
        .get()
}

async fn live_grants(flow: &Flow, client: &Client) -> (u64, u64) {
    let v: Value = flow
        .app
        .client
        .get(flow.app.url(&format!("/admin/v1/clients/{}", client.id)))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        v["live_grants"].as_u64().unwrap(),
        v["live_tokens"].as_u64().unwrap(),
    )
}

/// A sign-in while the upstream misbehaves: the client must be sent back
/// with `temporarily_unavailable`, in bounded time, and no code.
async fn failed_sign_in(flow: &Flow, client: &Client, case: &str) {
    let (res, _) = flow.authorize(client, &[]).await;
    let page = res.text().await.unwrap();
    let started = Instant::now();
    let landed = flow.consent(&page, "approve").await;
    let took = started.elapsed();
    let q: Value = landed.json().await.unwrap();
    assert_eq!(q["error"], "temporarily_unavailable", "{case}: {q}");
    assert!(q.get("code").is_none(), "{case}: {q}");
    assert!(took < Duration::from_millis(2500), "{case} took {took:?}");
}

async fn failed_refresh(flow: &Flow, client: &Client, refresh: &str, case: &str) {
    let started = Instant::now();
    let (status, body) = flow.refresh(client, refresh).await;
    let took = started.elapsed();
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("temporarily_unavailable")),
        "{case}: {body}"
    );
    assert!(took < Duration::from_millis(2500), "{case} took {took:?}");
}

#[actix_web::test]
async fn a_down_slow_failing_garbled_or_resetting_upstream_gets_bounded_rfc_errors_and_recovery() {
    let mut switch = Switch::reserve(0);
    let token_uri = format!("http://127.0.0.1:{}/token", switch.port);
    let flow = setup(&[
        ("DRAWBRIDGE_UPSTREAM__TOKEN_URI", token_uri.as_str()),
        (
            "DRAWBRIDGE_OAUTH__INTROSPECTION_SECRET",
            INTROSPECTION_SECRET,
        ),
    ])
    .await;
    switch.target = flow.google.url.rsplit(':').next().unwrap().parse().unwrap();
    let client = flow.register("client_secret_post").await;

    // Down: nothing listens at the token endpoint.
    let before = upstream_count("token", "unreachable");
    failed_sign_in(&flow, &client, "down").await;
    assert_eq!(
        upstream_count("token", "unreachable"),
        before + 1,
        "{}",
        drawbridge::metrics::METRICS.render()
    );
    assert_eq!(live_grants(&flow, &client).await, (0, 0), "nothing stored");

    // The upstream comes back: sign-in works with no restart.
    switch.listen();
    flow.google.set_expires_in(30);
    let login = flow.login(&client).await;
    let (status, tokens) = flow.exchange(&client, &login).await;
    assert_eq!(status, 200, "{tokens}");
    let mut refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let mut stored = live_grants(&flow, &client).await;

    let slow = || {
        flow.google
            .set_mode(Mode::Slow(Duration::from_millis(1500)))
    };
    let error_500 = || {
        flow.google
            .set_mode(Mode::TokenError(500, json!({"oops": true})))
    };
    let garbled = || flow.google.set_mode(Mode::Malformed);
    let reset = || switch.set(Wire::Reset);
    let cases: [(&str, &str, &dyn Fn()); 4] = [
        ("slow", "timeout", &slow),
        ("500", "http_5xx", &error_500),
        ("malformed", "malformed", &garbled),
        ("reset", "connection_lost", &reset),
    ];
    for (case, outcome, break_it) in cases {
        // Google's token is near expiry, so the refresh must call upstream.
        flow.app.clock.advance(60);
        break_it();
        let (token_before, refresh_before) = (
            upstream_count("token", outcome),
            upstream_count("refresh", outcome),
        );
        failed_sign_in(&flow, &client, case).await;
        assert_eq!(
            upstream_count("token", outcome),
            token_before + 1,
            "{case} counted as {outcome}"
        );
        failed_refresh(&flow, &client, &refresh, case).await;
        assert_eq!(
            upstream_count("refresh", outcome),
            refresh_before + 1,
            "{case} counted as {outcome} at refresh"
        );
        assert_eq!(
            live_grants(&flow, &client).await,
            stored,
            "{case}: nothing stored half-way"
        );
        // Recovery is automatic: the same refresh token works once the
        // upstream behaves again.
        flow.google.set_mode(Mode::Normal);
        switch.set(Wire::Pass);
        let (status, next) = flow.refresh(&client, &refresh).await;
        assert_eq!(status, 200, "{case}: after recovery {next}");
        let v = flow
            .introspect(next["access_token"].as_str().unwrap())
            .await;
        assert_eq!(v["active"], true, "{case}: {v}");
        refresh = next["refresh_token"].as_str().unwrap().to_owned();
        stored = live_grants(&flow, &client).await;
    }
}
