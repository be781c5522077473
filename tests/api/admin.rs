//! The admin API, its scripts, and the OpenAPI document.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::helpers::{captured_logs, sample_registration, spawn_app, TestApp, ADMIN_TOKEN};
use crate::login_flow::{setup, INTROSPECTION_SECRET};

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("{k} missing in {v}"))
}

async fn admin(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app
        .client
        .request(method, app.url(path))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[actix_web::test]
async fn admin_calls_without_the_right_token_are_401_audited_and_change_nothing() {
    let app = spawn_app().await;
    let (_, reg) = app.register(&sample_registration()).await;
    let id = s(&reg, "client_id");
    let same_length = "x".repeat(ADMIN_TOKEN.len());
    for token in [None, Some("wrong"), Some(same_length.as_str())] {
        let mut req = app
            .client
            .delete(app.url(&format!("/admin/v1/clients/{id}")));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 401, "{token:?}");
        assert!(res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
        assert_eq!(res.json::<Value>().await.unwrap()["error"], "unauthorized");
    }
    assert_eq!(app.client_count().await, 1, "nothing changed");
    let failures = captured_logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event_type"] == "admin_action" && e["success"] == false)
        .count();
    assert!(failures >= 3);
    // With the token it works, and is audited with its target.
    let (status, body) = admin(
        &app,
        reqwest::Method::DELETE,
        &format!("/admin/v1/clients/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(captured_logs().contains(&format!("\"admin_target\":\"{id}\"")));
    assert_eq!(app.client_count().await, 0);
}

#[actix_web::test]
async fn repeated_wrong_admin_tokens_are_rate_limited() {
    let app = spawn_app().await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let res = app
            .client
            .get(app.url("/admin/v1/stats"))
            .bearer_auth("nope")
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
}

#[actix_web::test]
async fn listing_walks_every_client_exactly_once_while_clients_are_added() {
    // 30 never-used registrations from one address: over the flood cap.
    let app =
        crate::helpers::spawn_app_with(&[("DRAWBRIDGE_CLIENTS__MAX_UNUSED_PER_ADDRESS", "0")])
            .await;
    let mut before = HashSet::new();
    for _ in 0..25 {
        let (_, reg) = app.register(&sample_registration()).await;
        before.insert(s(&reg, "client_id").to_owned());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/admin/v1/clients?limit=7&cursor={c}"),
            None => "/admin/v1/clients?limit=7".into(),
        };
        let (status, page) = admin(&app, reqwest::Method::GET, &path, None).await;
        assert_eq!(status, 200, "{page}");
        for c in page["clients"].as_array().unwrap() {
            seen.push(s(c, "client_id").to_owned());
            assert!(
                c.get("client_secret").is_none() && c.get("registration_access_token").is_none()
            );
        }
        // Clients keep arriving during the walk.
        app.register(&sample_registration()).await;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no client twice");
    assert!(
        before.is_subset(&unique),
        "every client that existed when the walk began was listed"
    );
    let (_, filtered) = admin(
        &app,
        reqwest::Method::GET,
        "/admin/v1/clients?name_contains=inspector&auth_method=client_secret_post&expired=false",
        None,
    )
    .await;
    assert!(filtered["clients"].as_array().unwrap().len() >= 25);
    let (status, _) = admin(
        &app,
        reqwest::Method::GET,
        "/admin/v1/clients?limit=0",
        None,
    )
    .await;
    assert_eq!(status, 400);
}

#[actix_web::test]
async fn revoking_a_client_kills_its_tokens_at_once_and_disable_blocks_it() {
    let f = setup(&[(
        "DRAWBRIDGE_OAUTH__INTROSPECTION_SECRET",
        INTROSPECTION_SECRET,
    )])
    .await;
    let client = f.register("client_secret_post").await;
    let login = f.login(&client).await;
    let (_, tokens) = f.exchange(&client, &login).await;
    let (status, detail) = admin(
        &f.app,
        reqwest::Method::GET,
        &format!("/admin/v1/clients/{}", client.id),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            detail["live_grants"].as_u64(),
            detail["live_tokens"].as_u64()
        ),
        (Some(1), Some(2))
    );
    // Disabled: it cannot use its refresh token; enabled again: it can.
    assert_eq!(
        admin(
            &f.app,
            reqwest::Method::POST,
            &format!("/admin/v1/clients/{}/disable", client.id),
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(f.refresh(&client, s(&tokens, "refresh_token")).await.0, 401);
    assert_eq!(
        admin(
            &f.app,
            reqwest::Method::POST,
            &format!("/admin/v1/clients/{}/enable", client.id),
            None
        )
        .await
        .0,
        200
    );
    let (status, fresh) = f.refresh(&client, s(&tokens, "refresh_token")).await;
    assert_eq!(status, 200, "{fresh}");
    let (status, body) = admin(
        &f.app,
        reqwest::Method::DELETE,
        &format!("/admin/v1/clients/{}", client.id),
        None,
    )
    .await;
    assert_eq!((status, body["revoked_grants"].as_u64()), (200, Some(1)));
    assert_eq!(
        f.introspect(s(&fresh, "access_token")).await["active"],
        false
    );
    assert_eq!(f.refresh(&client, s(&fresh, "refresh_token")).await.0, 401);
    assert_eq!(
        admin(
            &f.app,
            reqwest::Method::DELETE,
            &format!("/admin/v1/clients/{}", client.id),
            None
        )
        .await
        .0,
        404
    );
}

#[actix_web::test]
async fn revoking_a_user_kills_their_tokens_across_clients() {
    let f = setup(&[(
        "DRAWBRIDGE_OAUTH__INTROSPECTION_SECRET",
        INTROSPECTION_SECRET,
    )])
    .await;
    let a = f.register("client_secret_post").await;
    let b = f.register("none").await;
    let la = f.login(&a).await;
    let (_, ta) = f.exchange(&a, &la).await;
    let lb = f.login(&b).await;
    let (_, tb) = f.exchange(&b, &lb).await;
    let (_, users) = admin(&f.app, reqwest::Method::GET, "/admin/v1/users", None).await;
    let user = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == crate::fake_google::EMAIL)
        .unwrap()
        .clone();
    assert_eq!(user["grants"], 2);
    let (status, body) = admin(
        &f.app,
        reqwest::Method::DELETE,
        "/admin/v1/users/ada%40example.com",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["revoked_grants"], 2);
    for t in [&ta, &tb] {
        assert_eq!(f.introspect(s(t, "access_token")).await["active"], false);
    }
    assert_eq!(f.refresh(&a, s(&ta, "refresh_token")).await.0, 400);
    // Token revocation by value, by client, and bad requests.
    let la = f.login(&a).await;
    let (_, ta) = f.exchange(&a, &la).await;
    let (status, body) = admin(
        &f.app,
        reqwest::Method::POST,
        "/admin/v1/tokens/revoke",
        Some(json!({"token": s(&ta, "access_token")})),
    )
    .await;
    assert_eq!((status, &body["revoked"]), (200, &json!(true)));
    assert_eq!(f.introspect(s(&ta, "access_token")).await["active"], false);
    let (status, _) = admin(
        &f.app,
        reqwest::Method::POST,
        "/admin/v1/tokens/revoke",
        Some(json!({"client_id": a.id})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(f.refresh(&a, s(&ta, "refresh_token")).await.0, 400);
    let (status, _) = admin(
        &f.app,
        reqwest::Method::POST,
        "/admin/v1/tokens/revoke",
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 400);
}

#[actix_web::test]
async fn operations_endpoints_report_and_act() {
    let app = spawn_app().await;
    app.register(&sample_registration()).await;
    let (status, run) = admin(&app, reqwest::Method::POST, "/admin/v1/janitor/run", None).await;
    assert_eq!(status, 200, "{run}");
    let (status, stats) = admin(&app, reqwest::Method::GET, "/admin/v1/stats", None).await;
    assert_eq!(status, 200);
    assert_eq!(stats["clients"], 1);
    assert_eq!(stats["storage_mode"], "FILE_ENCRYPTED");
    assert!(stats["janitor_last_run"].is_object());
    let old = s(&stats, "key_id").to_owned();
    let (status, rotated) = admin(&app, reqwest::Method::POST, "/admin/v1/keys/rotate", None).await;
    assert_eq!(status, 200, "{rotated}");
    assert_ne!(s(&rotated, "key_id"), old);
    if app.config.storage.backend.as_str() == "postgres" {
        // A shared database: the first run keeps the old key for the other
        // instances; the second retires it (docs/several-instances.md).
        assert_eq!(rotated["retired_keys"], json!([]));
        let (status, again) =
            admin(&app, reqwest::Method::POST, "/admin/v1/keys/rotate", None).await;
        assert_eq!(status, 200, "{again}");
        assert_eq!(again["key_id"], rotated["key_id"]);
        assert_eq!(again["retired_keys"], json!([old]));
    } else {
        assert_eq!(rotated["retired_keys"], json!([old]));
    }
    let (_, stats) = admin(&app, reqwest::Method::GET, "/admin/v1/stats", None).await;
    assert_eq!(stats["key_id"], rotated["key_id"]);
}

/// Runs a script off the test's thread: the actors' dispatchers live on it.
pub async fn script(app: &TestApp, cmdline: &str) -> std::process::Output {
    let (address, cmdline) = (app.address.clone(), cmdline.to_owned());
    actix_web::rt::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .arg("-c")
            .arg(cmdline)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("DRAWBRIDGE_URL", address)
            .env("DRAWBRIDGE_ADMIN_TOKEN", ADMIN_TOKEN)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

#[actix_web::test]
async fn the_operator_scripts_work_against_a_live_server() {
    let f = setup(&[]).await;
    let keep = f.register("client_secret_post").await;
    let login = f.login(&keep).await;
    f.exchange(&keep, &login).await;
    let (_, stale) = f
        .app
        .register(&json!({"client_name": "stale one", "redirect_uris": ["https://a.example/cb"]}))
        .await;
    f.app.clock.advance(2 * 3600);
    let table = script(&f.app, "scripts/list-clients.sh").await;
    let out = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.status.success(),
        "{}",
        String::from_utf8_lossy(&table.stderr)
    );
    assert!(
        out.starts_with("CLIENT ID") && out.contains(&keep.id) && out.contains("expired"),
        "{out}"
    );
    let json = script(&f.app, "scripts/list-clients.sh --json").await;
    let rows: Vec<Value> = String::from_utf8_lossy(&json.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    // The expired one goes, through the pipe; the used one stays.
    let piped = script(
        &f.app,
        "scripts/list-clients.sh --expired | scripts/revoke-client.sh",
    )
    .await;
    assert!(
        piped.status.success(),
        "{}",
        String::from_utf8_lossy(&piped.stderr)
    );
    assert!(String::from_utf8_lossy(&piped.stdout)
        .contains(&format!("revoked {}", s(&stale, "client_id"))));
    assert_eq!(f.app.client_count().await, 1);
    let user = script(
        &f.app,
        &format!("scripts/revoke-user.sh {}", crate::fake_google::EMAIL),
    )
    .await;
    assert!(
        user.status.success(),
        "{}",
        String::from_utf8_lossy(&user.stderr)
    );
    assert!(String::from_utf8_lossy(&user.stdout).contains("1 sign-ins"));
    // Failures are clear and non-zero.
    let missing = script(
        &f.app,
        "scripts/revoke-client.sh mcp_AAAAAAAAAAAAAAAAAAAAAA",
    )
    .await;
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("HTTP 404"));
    let unauthorized = script(
        &f.app,
        "DRAWBRIDGE_ADMIN_TOKEN=wrong scripts/list-clients.sh",
    )
    .await;
    assert!(!unauthorized.status.success());
    assert!(String::from_utf8_lossy(&unauthorized.stderr).contains("HTTP 401"));
    for name in ["list-clients.sh", "revoke-client.sh", "revoke-user.sh"] {
        let help = script(&f.app, &format!("scripts/{name} --help")).await;
        assert!(
            help.status.success() && String::from_utf8_lossy(&help.stdout).contains("Usage:"),
            "{name}"
        );
    }
}

#[test]
fn the_committed_openapi_document_matches_the_code() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .unwrap();
    assert!(
        committed == drawbridge::http::openapi::document(),
        "openapi/openapi.json is stale: run `cargo run -q -- openapi > openapi/openapi.json`"
    );
}

/// Every route the source registers appears in the OpenAPI document.
#[test]
fn every_served_route_is_in_the_openapi_document() {
    let doc: Value = serde_json::from_str(&drawbridge::http::openapi::document()).unwrap();
    let normalise = |p: &str| {
        let mut out = String::new();
        let mut depth = 0;
        for c in p.chars() {
            match c {
                '{' => {
                    depth += 1;
                    if depth == 1 {
                        out.push_str("{}");
                    }
                }
                '}' => depth -= 1,
                c if depth == 0 => out.push(c),
                _ => {}
            }
        }
        out
    };
    let documented: HashSet<String> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| normalise(k))
        .collect();
    let mut routes = Vec::new();
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(std::path::Path::new(src), &mut files);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let prefix = if file.to_string_lossy().contains("/http/admin/") {
            "/admin/v1"
        } else {
            ""
        };
        for marker in [".route(\"", "web::resource(\"", "for path in [\""] {
            for (i, _) in text.match_indices(marker) {
                let rest = &text[i + marker.len()..];
                let path = &rest[..rest.find('"').unwrap()];
                routes.push(format!("{prefix}{path}"));
            }
        }
        // A resource served under several paths: `web::resource(["/a", "/b"])`.
        for (i, _) in text.match_indices("web::resource([") {
            let rest = &text[i + "web::resource([".len()..];
            let list = &rest[..rest.find(']').unwrap()];
            for path in list.split(',').map(|p| p.trim().trim_matches('"')) {
                routes.push(format!("{prefix}{path}"));
            }
        }
    }
    // Constants the dev provider registers its routes under.
    routes.extend(
        [
            "/dev/authorize",
            "/dev/token",
            "/dev/userinfo",
            "/dev/revoke",
            "/openapi.json",
            "/oauth/register",
            "/register",
        ]
        .map(String::from),
    );
    assert!(routes.len() > 30, "the scan found the routes: {routes:?}");
    let missing: Vec<&String> = routes
        .iter()
        .filter(|r| !r.contains("swagger-ui") && !documented.contains(&normalise(r)))
        .collect();
    assert!(missing.is_empty(), "served but not documented: {missing:?}");
}

#[actix_web::test]
async fn a_failed_admin_operation_is_logged_with_the_operation_and_the_reason() {
    let app = spawn_app().await;
    let absent = "mcp_absentFromThisRegistry0042";
    let path = format!("/admin/v1/clients/{absent}");
    let (status, body) = admin(&app, reqwest::Method::GET, &path, None).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "not_found");
    let logged = captured_logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .any(|e| {
            e["operation"] == "get_client"
                && e["error"]
                    .as_str()
                    .is_some_and(|m| m.contains(&format!("no client {absent}")))
        });
    assert!(logged, "the refusal is logged, not swallowed");
}
