//! Operations: the Janitor, rate limits, the audit log and /metrics.

use std::sync::Arc;

use drawbridge::actors::janitor::RunJanitor;
use drawbridge::actors::registry::{ClientRecord, ExpiryPolicy, RegistryCore};
use drawbridge::domain::{AuthMethod, ClientMetadata, GrantType, SecretToken};
use drawbridge::persistence;
use drawbridge::storage::{Batch, Owned, Tree};
use serde_json::{json, Value};

use crate::helpers::{
    captured_logs, config_with, sample_registration, spawn_app_in, spawn_app_with, T0,
};
use crate::login_flow::{setup, INTROSPECTION_SECRET};

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("{k} missing in {v}"))
}

/// Audit records (parsed) with this event type.
fn audit_events(event_type: &str) -> Vec<Value> {
    captured_logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == "audit" && v["event_type"] == event_type)
        .collect()
}

fn audited(event_type: &str, client_id: &str) -> bool {
    audit_events(event_type)
        .iter()
        .any(|e| e["client_id"] == client_id)
}

#[actix_web::test]
async fn the_janitor_removes_exactly_what_expired_and_the_tokens_of_expired_clients() {
    let f = setup(&[
        (
            "DRAWBRIDGE_OAUTH__INTROSPECTION_SECRET",
            INTROSPECTION_SECRET,
        ),
        ("SESSION_TIMEOUT_MINUTES", "1440"),
    ])
    .await;
    // A client that signs in (used: lives 24 h after its last use) and one that never does (1 h).
    let used = f.register("client_secret_post").await;
    let idle = f.register("none").await;
    let login = f.login(&used).await;
    let (_, tokens) = f.exchange(&used, &login).await;
    // Half an hour later nothing has expired.
    f.app.clock.advance(1800);
    let report = f.app.janitor.send(RunJanitor).await.unwrap();
    assert_eq!(
        (report.clients, report.tokens, report.grants),
        (0, 0, 0),
        "{report:?}"
    );
    // After 61 minutes: the idle registration and the access token are gone; the rest stays.
    f.app.clock.advance(1900);
    let report = f.app.janitor.send(RunJanitor).await.unwrap();
    assert_eq!(report.clients, 1, "{report:?}");
    assert_eq!(report.tokens, 1, "the expired access token: {report:?}");
    assert!(audited("client_expired", &idle.id));
    assert_eq!(
        f.introspect(s(&tokens, "refresh_token")).await["active"],
        true
    );
    assert_eq!(f.app.client_count().await, 1);
    // 25 hours after its last use the used client expires too, taking its refresh token.
    f.app.clock.advance(25 * 3600);
    let report = f.app.janitor.send(RunJanitor).await.unwrap();
    assert_eq!(report.clients, 1, "{report:?}");
    assert_eq!(
        f.introspect(s(&tokens, "refresh_token")).await["active"],
        false
    );
    assert!(audited("client_expired", &used.id));
    let runs = audit_events("janitor_run");
    assert!(runs.iter().any(|r| r["removed_clients"] == 1));
}

#[actix_web::test]
async fn a_purge_of_100_000_expired_clients_runs_while_requests_keep_being_served() {
    let dir = tempfile::tempdir().unwrap();
    let vars = [
        ("MAX_PROXY_CLIENTS", "1000000"),
        ("DRAWBRIDGE_STORAGE__DURABILITY", "periodic"),
        ("RATE_LIMIT_ENABLED", "false"),
    ];
    {
        let config = config_with(dir.path(), &vars);
        let _lock = persistence::lock_dir(&config).unwrap();
        let opened = persistence::open_mode(&config, config.storage.mode, false, T0).unwrap();
        let hash = SecretToken::generate("").hash();
        let metadata = ClientMetadata {
            client_name: Some("stale".into()),
            redirect_uris: vec![drawbridge::domain::RedirectUri::parse(
                "https://a.example/cb",
                &[],
            )
            .unwrap()],
            grant_types: vec![GrantType::AuthorizationCode],
            scope: None,
            contacts: vec![],
            logo_uri: None,
            client_uri: None,
            policy_uri: None,
            tos_uri: None,
            auth_method: AuthMethod::None,
            software_id: None,
            software_version: None,
            upstream_client_id: None,
            application_type: drawbridge::domain::ApplicationType::Web,
        };
        for chunk in 0..100 {
            let mut batch = Batch::new();
            for i in 0..1000 {
                let id = format!("mcp_{:022}", chunk * 1000 + i);
                let record = ClientRecord {
                    client_id: drawbridge::domain::ClientId::stored(id.clone()),
                    secret_hash: None,
                    registration_token_hash: hash,
                    metadata: metadata.clone(),
                    issued_at: T0 - 7200,
                    last_used_at: None,
                    updated_at: T0 - 7200,
                    disabled: false,
                    document: None,
                };
                batch.insert(Tree::Clients, id.into_bytes(), record.encode().unwrap());
            }
            opened.store.apply(batch).unwrap();
        }
        opened.store.flush().unwrap();
        let policy = ExpiryPolicy {
            unused_seconds: 3600,
            idle_seconds: 86400,
        };
        assert_eq!(
            RegistryCore::new(
                Owned::new(Arc::clone(&opened.store)),
                policy,
                1_000_000,
                false
            )
            .count(drawbridge::actors::registry::CountClients)
            .unwrap(),
            100_000
        );
    }
    let app = spawn_app_in(dir, &vars).await;
    let purge = app.janitor.send(RunJanitor);
    let started = std::time::Instant::now();
    let registrations = async {
        let mut served = 0;
        let mut worst = std::time::Duration::ZERO;
        for _ in 0..50 {
            let t = std::time::Instant::now();
            assert_eq!(app.register(&sample_registration()).await.0, 201);
            worst = worst.max(t.elapsed());
            served += 1;
        }
        (served, worst)
    };
    let (report, (served, worst)) = futures_util::future::join(purge, registrations).await;
    let report = report.unwrap();
    assert_eq!(report.clients, 100_000);
    assert_eq!(served, 50);
    assert_eq!(app.client_count().await, 50);
    println!(
        "purged 100000 in {} ms; 50 registrations during it, slowest {worst:?}, total {:?}",
        report.duration_ms,
        started.elapsed()
    );
    assert!(
        worst < std::time::Duration::from_secs(2),
        "a registration waited {worst:?} behind the purge"
    );
}

#[actix_web::test]
async fn the_n_plus_first_registration_from_one_address_is_429_until_the_window_resets() {
    let app = spawn_app_with(&[
        ("MAX_REGISTRATIONS_PER_MINUTE", "3"),
        ("DRAWBRIDGE_RATE_LIMIT__REGISTRATION_BURST", "3"),
        ("DRAWBRIDGE_RATE_LIMIT__TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let register_from = |ip: &'static str| {
        app.client
            .post(app.url("/oauth/register"))
            .header("X-Forwarded-For", ip)
            .json(&sample_registration())
            .send()
    };
    for _ in 0..3 {
        assert_eq!(register_from("203.0.113.7").await.unwrap().status(), 201);
    }
    let refused = register_from("203.0.113.7").await.unwrap();
    assert_eq!(refused.status(), 429);
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(s(&body, "error_description").contains("rate limit"));
    assert_eq!(
        app.client_count().await,
        3,
        "nothing stored for the refused request"
    );
    assert_eq!(
        register_from("198.51.100.9").await.unwrap().status(),
        201,
        "another address is unaffected"
    );
    app.clock.advance(60);
    assert_eq!(
        register_from("203.0.113.7").await.unwrap().status(),
        201,
        "the window reset"
    );
    assert!(audit_events("rate_limited")
        .iter()
        .any(|e| e["ip"] == "203.0.113.7"));
    // Forwarding headers from an untrusted peer are not believed.
    let direct = spawn_app_with(&[
        ("MAX_REGISTRATIONS_PER_MINUTE", "1"),
        ("DRAWBRIDGE_RATE_LIMIT__REGISTRATION_BURST", "1"),
    ])
    .await;
    let spoof = |ip: &'static str| {
        direct
            .client
            .post(direct.url("/oauth/register"))
            .header("X-Forwarded-For", ip)
            .json(&sample_registration())
            .send()
    };
    assert_eq!(spoof("192.0.2.1").await.unwrap().status(), 201);
    assert_eq!(spoof("192.0.2.2").await.unwrap().status(), 429);
}

#[actix_web::test]
async fn repeated_failed_client_authentication_locks_the_client_id_out() {
    let f = setup(&[("DRAWBRIDGE_RATE_LIMIT__FAILED_AUTH_PER_MINUTE", "2")]).await;
    let client = f.register("client_secret_post").await;
    let attempt = |secret: &'static str| {
        f.app
            .client
            .post(f.app.url("/oauth/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", "x"),
                ("client_id", &client.id),
                ("client_secret", secret),
            ])
            .send()
    };
    assert_eq!(attempt("wrong").await.unwrap().status(), 401);
    assert_eq!(attempt("wrong").await.unwrap().status(), 401);
    let locked = attempt("wrong").await.unwrap();
    assert_eq!(locked.status(), 429);
    assert!(locked.headers().contains_key("retry-after"));
    // The right secret is never refused by the lock-out: it is judged
    // normally at once (a stranger's failures must not lock the client out)…
    let (status, body) = f.refresh(&client, "mcp_rt_unknown").await;
    assert_eq!((status, s(&body, "error")), (400, "invalid_grant"));
    // …while wrong secrets stay locked out until the window passes.
    assert_eq!(attempt("wrong").await.unwrap().status(), 429);
    f.app.clock.advance(61);
    assert_eq!(attempt("wrong").await.unwrap().status(), 401);
    assert!(audited("invalid_client", &client.id));
}

#[actix_web::test]
async fn every_audit_event_is_emitted_by_the_action_that_causes_it() {
    let f = setup(&[
        (
            "DRAWBRIDGE_OAUTH__INTROSPECTION_SECRET",
            INTROSPECTION_SECRET,
        ),
        ("DRAWBRIDGE_AUDIT__USER_FIELD", "hashed"),
    ])
    .await;
    let client = f.register("client_secret_post").await;
    assert!(audited("client_registered", &client.id));
    let login = f.login(&client).await;
    assert!(audited("authorization_started", &client.id));
    assert!(audited("consent_granted", &client.id));
    let callback = audit_events("upstream_callback")
        .into_iter()
        .find(|e| e["client_id"] == client.id.as_str())
        .unwrap();
    assert_eq!(callback["success"], true);
    assert!(
        callback["user"]
            .as_str()
            .is_some_and(|u| u.starts_with("sha256:") && !u.contains('@')),
        "{callback}"
    );
    let (_, tokens) = f.exchange(&client, &login).await;
    assert!(audited("token_issued", &client.id));
    let (_, refreshed) = f.refresh(&client, s(&tokens, "refresh_token")).await;
    assert!(audited("token_refreshed", &client.id));
    f.app.clock.advance(60);
    f.refresh(&client, s(&tokens, "refresh_token")).await;
    assert!(audited("token_reuse_detected", &client.id));
    let login = f.login(&client).await;
    let (_, tokens) = f.exchange(&client, &login).await;
    f.app
        .client
        .post(f.app.url("/oauth/revoke"))
        .form(&[
            ("token", s(&tokens, "refresh_token")),
            ("client_id", &client.id),
            ("client_secret", client.secret.as_deref().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert!(audited("token_revoked", &client.id));
    let wrong = crate::login_flow::Client {
        id: client.id.clone(),
        secret: Some("mcp_cs_nope".into()),
        redirect: client.redirect.clone(),
    };
    f.refresh(&wrong, s(&refreshed, "refresh_token")).await;
    assert!(audited("invalid_client", &client.id));
    let (res, _) = f.authorize(&client, &[]).await;
    f.consent(&res.text().await.unwrap(), "deny").await;
    assert!(audited("consent_denied", &client.id));
    let (status, reg) = f
        .app
        .register(&json!({"redirect_uris": ["https://a.example/cb"]}))
        .await;
    assert_eq!(status, 201);
    let id = s(&reg, "client_id");
    let put = json!({"redirect_uris": ["https://b.example/cb"]});
    f.app
        .manage(
            reqwest::Method::PUT,
            id,
            Some(s(&reg, "registration_access_token")),
            Some(&put),
        )
        .await;
    assert!(audited("client_updated", id));
    f.app
        .manage(
            reqwest::Method::DELETE,
            id,
            Some(s(&reg, "registration_access_token")),
            None,
        )
        .await;
    assert!(audited("client_deleted", id));
    f.app.clock.advance(2 * 86400);
    f.app.janitor.send(RunJanitor).await.unwrap();
    assert!(audited("client_expired", &client.id));
    assert!(!audit_events("janitor_run").is_empty());
    // Every record carries the common fields.
    for e in audit_events("token_issued") {
        for field in ["event_type", "client_id", "ip", "success"] {
            assert!(!e[field].is_null(), "{field} missing in {e}");
        }
    }
}

#[actix_web::test]
async fn metrics_expose_each_named_metric_after_its_action() {
    let f = setup(&[
        ("MAX_REGISTRATIONS_PER_MINUTE", "3"),
        ("DRAWBRIDGE_RATE_LIMIT__REGISTRATION_BURST", "3"),
    ])
    .await;
    let (_, reg) = f.app.register(&sample_registration()).await;
    f.app
        .manage(
            reqwest::Method::GET,
            s(&reg, "client_id"),
            reg["registration_access_token"].as_str(),
            None,
        )
        .await;
    let client = f.register("client_secret_post").await;
    let login = f.login(&client).await;
    let (_, tokens) = f.exchange(&client, &login).await;
    f.refresh(&client, s(&tokens, "refresh_token")).await;
    f.app.register(&sample_registration()).await;
    f.app.register(&sample_registration()).await;
    f.app.janitor.send(RunJanitor).await.unwrap();
    let text = f.app.metrics().await;
    for needle in [
        r#"drawbridge_http_requests_total{method="POST",route="/oauth/register",status="201"}"#,
        r#"drawbridge_http_requests_total{method="GET",route="/oauth/register/{client_id}""#,
        "drawbridge_http_request_duration_seconds_bucket",
        r#"drawbridge_registrations_total{outcome="created"}"#,
        r#"drawbridge_token_exchanges_total{grant_type="authorization_code",outcome="success"}"#,
        r#"drawbridge_token_exchanges_total{grant_type="refresh_token",outcome="success"}"#,
        r#"drawbridge_upstream_requests_total{endpoint="token",outcome="ok"}"#,
        "drawbridge_upstream_request_duration_seconds_bucket",
        r#"drawbridge_consent_decisions_total{decision="approved"}"#,
        r#"drawbridge_upstream_callbacks_total{outcome="ok"}"#,
        r#"drawbridge_rate_limited_total{limit="registration"}"#,
        "drawbridge_janitor_runs_total",
        r#"drawbridge_janitor_removed_total{kind="clients"}"#,
        "drawbridge_janitor_run_duration_seconds_count",
        r#"drawbridge_live_records{kind="clients"}"#,
        r#"drawbridge_live_records{kind="tokens"}"#,
        "drawbridge_clients_max ",
        "drawbridge_store_size_bytes",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    ] {
        assert!(text.contains(needle), "{needle} not in /metrics");
    }
    // Route labels are templates: no client id appears in a label.
    assert!(!text.contains(&client.id));
}
