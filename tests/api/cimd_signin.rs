//! Signing in with a Client ID Metadata Document: the `client_id` is the
//! URL of a document on a real HTTPS host (`cimd_host.rs`), which
//! Drawbridge fetches, validates, keeps as HTTP caching allows, and turns
//! into a public client — through consent, the code exchange, refresh and
//! the admin API, and every way a document or its host can be refused.

use std::time::Duration;

use serde_json::{json, Value};

use crate::cimd_host::{self, ok, Answer, CimdHost};
use crate::helpers::{captured_logs, ADMIN_TOKEN};
use crate::login_flow::{setup, Client, Flow};

const PATH: &str = "/oauth/client-metadata.json";

/// The settings a test set-up needs: the document host runs on loopback
/// with a certificate from the test CA.
fn test_host_allowed() -> Vec<(&'static str, String)> {
    vec![
        (
            "DRAWBRIDGE_OAUTH__CIMD__ALLOW_SPECIAL_USE_ADDRESSES",
            "true".into(),
        ),
        (
            "DRAWBRIDGE_OAUTH__CIMD__EXTRA_CA_FILE",
            cimd_host::fixture("ca.pem").display().to_string(),
        ),
    ]
}

pub async fn flow_with(extra: &[(&str, &str)]) -> Flow {
    let mut vars = test_host_allowed();
    vars.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    setup(&refs).await
}

fn document(host: &CimdHost, path: &str, name: &str, redirect: &str) -> Value {
    json!({
        "client_id": host.url(path),
        "client_name": name,
        "redirect_uris": [redirect],
        "grant_types": ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "application_type": "native",
        "a_future_field": true,
    })
}

fn serve(host: &CimdHost, path: &str, doc: &Value, max_age: u32) {
    let headers = format!("cache-control: max-age={max_age}\r\n");
    host.answer(
        path,
        ok("application/json", &headers, doc.to_string().as_bytes()),
    );
}

/// A document client for `flow`'s fake Google callback, served at `PATH`.
pub async fn document_client(flow: &Flow, name: &str) -> (CimdHost, Client) {
    let host = cimd_host::start().await;
    let redirect = flow.google.client_callback();
    serve(&host, PATH, &document(&host, PATH, name, &redirect), 600);
    let client = Client {
        id: host.url(PATH),
        secret: None,
        redirect,
    };
    (host, client)
}

/// The `fetched` count of `drawbridge_client_metadata_documents_total`.
fn fetched_count(metrics: &str) -> u64 {
    let series = "drawbridge_client_metadata_documents_total{outcome=\"fetched\"} ";
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

fn encoded(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

#[actix_web::test]
async fn a_client_known_by_its_document_signs_in_exchanges_refreshes_and_is_seen_by_operators() {
    let flow = flow_with(&[]).await;
    let (_, doc) = flow
        .app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(doc["client_id_metadata_document_supported"], true);
    let (host, client) = document_client(&flow, "Documented Client").await;

    let (res, _) = flow.authorize(&client, &[]).await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("<strong>Documented Client</strong>"),
        "{page}"
    );
    assert!(
        page.contains("published by <strong class=\"host\">localhost</strong>"),
        "{page}"
    );
    assert!(
        page.contains("sent back to <strong class=\"host\">127.0.0.1</strong>"),
        "{page}"
    );
    assert!(page.contains("class=\"warn\""), "loopback warning: {page}");

    let login = flow.login(&client).await;
    let (status, tokens) = flow.exchange(&client, &login).await;
    assert_eq!(status, 200, "{tokens}");
    let (status, refreshed) = flow
        .refresh(&client, tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(
        host.requests_for(PATH),
        1,
        "two sign-ins within max-age share one fetch"
    );
    let seen = host.seen.lock().unwrap()[0].to_ascii_lowercase();
    assert!(
        !seen.contains("cookie") && !seen.contains("authorization"),
        "{seen}"
    );

    let (status, list) = flow
        .app
        .get_json_as_admin("/admin/v1/clients?kind=document")
        .await;
    assert_eq!(status, 200);
    assert_eq!(list["clients"].as_array().unwrap().len(), 1, "{list}");
    let listed = &list["clients"][0];
    assert_eq!(listed["client_id"], client.id);
    assert_eq!(listed["token_endpoint_auth_method"], "none");
    assert_eq!(
        listed["grant_types"],
        json!(["authorization_code", "refresh_token"]),
        "device_code is ignored"
    );
    assert_eq!(listed["document"]["url"], client.id);
    assert_eq!(listed["document"]["cache"], "fresh");
    assert_eq!(listed["document"]["sha256"].as_str().unwrap().len(), 64);
    let (_, registered) = flow
        .app
        .get_json_as_admin("/admin/v1/clients?kind=registered")
        .await;
    assert_eq!(registered["clients"], json!([]));

    let detail_path = format!("/admin/v1/clients/{}", encoded(&client.id));
    let (status, detail) = flow.app.get_json_as_admin(&detail_path).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["live_grants"], 1);
    // Metrics are process-wide: other tests fetch documents too.
    assert!(fetched_count(&flow.app.metrics().await) >= 1);
    let logs = captured_logs();
    assert!(logs.contains("client_document_admitted"));
    assert!(logs.contains(&client.id));
}

#[actix_web::test]
async fn a_document_is_fetched_again_once_its_cache_lifetime_ends() {
    let flow = flow_with(&[("DRAWBRIDGE_OAUTH__CIMD__MIN_CACHE_SECONDS", "60")]).await;
    let (host, client) = document_client(&flow, "Cached").await;
    flow.login(&client).await;
    flow.app.clock.advance(599);
    flow.login(&client).await;
    assert_eq!(host.requests_for(PATH), 1, "fetched again while fresh");
    flow.app.clock.advance(2);
    flow.login(&client).await;
    assert_eq!(
        host.requests_for(PATH),
        2,
        "not fetched again after max-age"
    );
}

#[actix_web::test]
async fn a_changed_document_is_shown_at_the_next_consent_and_earlier_grants_keep_working() {
    let flow = flow_with(&[]).await;
    let (host, client) = document_client(&flow, "Version One").await;
    let login = flow.login(&client).await;
    let (_, tokens) = flow.exchange(&client, &login).await;
    let detail_path = format!("/admin/v1/clients/{}", encoded(&client.id));
    let (_, before) = flow.app.get_json_as_admin(&detail_path).await;

    let second = format!("{}/second", client.redirect);
    let mut doc = document(&host, PATH, "Version Two", &client.redirect);
    doc["redirect_uris"] = json!([client.redirect, second]);
    serve(&host, PATH, &doc, 600);
    flow.app.clock.advance(601);
    let (res, _) = flow.authorize(&client, &[]).await;
    let page = res.text().await.unwrap();
    assert!(
        page.contains("<strong>Version Two</strong>"),
        "consent asked again with the new document: {page}"
    );
    let (status, refreshed) = flow
        .refresh(&client, tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, 200, "an earlier grant keeps working: {refreshed}");
    let (_, after) = flow.app.get_json_as_admin(&detail_path).await;
    assert_eq!(after["client_name"], "Version Two");
    assert_eq!(after["redirect_uris"].as_array().unwrap().len(), 2);
    assert_ne!(after["document"]["sha256"], before["document"]["sha256"]);
    assert_eq!(after["created_at"], before["created_at"]);
}

/// What the person sees when a sign-in with `client_id` is refused: a page
/// (never a redirect to the client), with the reason.
async fn refused(flow: &Flow, client_id: &str, redirect: &str) -> String {
    let client = Client {
        id: client_id.to_owned(),
        secret: None,
        redirect: redirect.to_owned(),
    };
    let (res, _) = flow.authorize(&client, &[]).await;
    assert_eq!(res.status(), 400, "{client_id}");
    assert_eq!(res.url().path(), "/oauth/authorize", "not redirected");
    let page = res.text().await.unwrap();
    assert!(page.contains("invalid_client"), "{page}");
    page
}

#[actix_web::test]
async fn every_way_a_document_or_its_host_can_fail_is_refused_and_nothing_is_stored() {
    let flow = flow_with(&[("DRAWBRIDGE_OAUTH__CIMD__TIMEOUT_MS", "1000")]).await;
    let host = cimd_host::start().await;
    let redirect = flow.google.client_callback();
    let good = |path: &str| document(&host, path, "Bad", &redirect).to_string();
    let body_of = |path: &str| good(path).into_bytes();
    host.answer(
        "/redirect",
        Answer::Raw(
            format!(
                "HTTP/1.1 302 Found\r\nlocation: {}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                host.url(PATH)
            )
            .into_bytes(),
        ),
    );
    host.answer("/html", ok("text/html", "", &body_of("/html")));
    let mut huge = document(&host, "/huge", "Bad", &redirect);
    huge["client_name"] = json!("x".repeat(6000));
    host.answer(
        "/huge",
        ok("application/json", "", huge.to_string().as_bytes()),
    );
    host.answer(
        "/slow",
        Answer::Slow(
            Duration::from_secs(5),
            match ok("application/json", "", &body_of("/slow")) {
                Answer::Raw(b) | Answer::Slow(_, b) => b,
            },
        ),
    );
    let mut other = document(&host, "/other", "Bad", &redirect);
    other["client_id"] = json!(host.url("/elsewhere"));
    host.answer(
        "/other",
        ok("application/json", "", other.to_string().as_bytes()),
    );
    let mut secret = document(&host, "/secret", "Bad", &redirect);
    secret["token_endpoint_auth_method"] = json!("client_secret_basic");
    host.answer(
        "/secret",
        ok("application/json", "", secret.to_string().as_bytes()),
    );

    for (path, reason) in [
        ("/redirect", "answered 302"),
        ("/missing", "answered 404"),
        ("/html", "not served as JSON"),
        ("/huge", "larger than 5120 bytes"),
        ("/slow", "did not arrive in time"),
        ("/other", "client_id is not its own URL"),
        ("/secret", "cannot use a shared secret"),
    ] {
        let page = refused(&flow, &host.url(path), &redirect).await;
        assert!(page.contains(reason), "{path}: {page}");
    }
    let malformed = format!("https://localhost:{}/a/../client", host.port);
    let page = refused(&flow, &malformed, &redirect).await;
    assert!(
        page.contains("dot segment") || page.contains("`..`"),
        "{page}"
    );

    // A redirect URI the document does not list is refused as for a
    // registered client.
    let doc = document(&host, PATH, "Good", &redirect);
    serve(&host, PATH, &doc, 600);
    let stranger = Client {
        id: host.url(PATH),
        secret: None,
        redirect: "http://127.0.0.1:9/elsewhere".into(),
    };
    let (res, _) = flow.authorize(&stranger, &[]).await;
    assert_eq!(res.status(), 400);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("not one this application registered"));

    let (_, list) = flow
        .app
        .get_json_as_admin("/admin/v1/clients?kind=document")
        .await;
    let stored: Vec<&Value> = list["clients"].as_array().unwrap().iter().collect();
    assert_eq!(stored.len(), 1, "only the good document is stored: {list}");
    let metrics = flow.app.metrics().await;
    for outcome in [
        "status",
        "not_json",
        "too_large",
        "timeout",
        "invalid_document",
    ] {
        assert!(
            metrics.contains(&format!(
                "drawbridge_client_metadata_documents_total{{outcome=\"{outcome}\"}}"
            )),
            "{outcome}"
        );
    }
    assert!(captured_logs().contains("client_document_refused"));
}

#[actix_web::test]
async fn without_the_operators_allowance_a_document_on_a_private_address_is_never_fetched() {
    let flow = setup(&[(
        "DRAWBRIDGE_OAUTH__CIMD__EXTRA_CA_FILE",
        &cimd_host::fixture("ca.pem").display().to_string(),
    )])
    .await;
    let host = cimd_host::start().await;
    let redirect = flow.google.client_callback();
    serve(
        &host,
        PATH,
        &document(&host, PATH, "Inside", &redirect),
        600,
    );
    // `localhost` is a name that resolves to loopback; the literal is the
    // address itself.
    let literal = format!("https://127.0.0.1:{}{PATH}", host.port);
    for id in [host.url(PATH), literal] {
        let page = refused(&flow, &id, &redirect).await;
        assert!(page.contains("non-public address"), "{page}");
    }
    assert_eq!(host.requests_for(PATH), 0, "the host was contacted");
}

#[actix_web::test]
async fn the_operators_allow_and_deny_lists_refuse_before_fetching_and_disabling_turns_cimd_off() {
    for (setting, value, reason) in [
        (
            "DRAWBRIDGE_OAUTH__CIMD__ALLOWED",
            "claude.ai,https://vscode.dev/oauth/*",
            "only accepts client metadata documents from the hosts its operator allows",
        ),
        (
            "DRAWBRIDGE_OAUTH__CIMD__DENIED",
            "localhost",
            "does not accept client metadata documents from this host",
        ),
        (
            "DRAWBRIDGE_OAUTH__CIMD__ENABLED",
            "false",
            "does not accept client metadata documents",
        ),
    ] {
        let flow = flow_with(&[(setting, value)]).await;
        let (host, client) = document_client(&flow, "Refused").await;
        let page = refused(&flow, &client.id, &client.redirect).await;
        assert!(page.contains(reason), "{setting}: {page}");
        assert_eq!(host.requests_for(PATH), 0, "{setting}: fetched anyway");
        let (_, doc) = flow
            .app
            .get_json("/.well-known/oauth-authorization-server")
            .await;
        assert_eq!(
            doc["client_id_metadata_document_supported"],
            setting != "DRAWBRIDGE_OAUTH__CIMD__ENABLED"
        );
    }
}

#[actix_web::test]
async fn an_operator_disables_and_revokes_a_document_client() {
    let flow = flow_with(&[]).await;
    let (_, client) = document_client(&flow, "Operated").await;
    let login = flow.login(&client).await;
    let (_, tokens) = flow.exchange(&client, &login).await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let path = format!("/admin/v1/clients/{}", encoded(&client.id));
    let admin = |method: reqwest::Method, path: String| {
        flow.app
            .client
            .request(method, flow.app.url(&path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
    };

    let res = admin(reqwest::Method::POST, format!("{path}/disable"))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    refused(&flow, &client.id, &client.redirect).await;
    let (status, body) = flow.refresh(&client, &refresh).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );

    let res = admin(reqwest::Method::POST, format!("{path}/enable"))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (status, body) = flow.refresh(&client, &refresh).await;
    assert_eq!(status, 200, "{body}");
    let newer = body["refresh_token"].as_str().unwrap().to_owned();

    // Operators revoke it from a script, by its URL.
    let revoked = crate::admin::script(
        &flow.app,
        &format!("scripts/revoke-client.sh '{}'", client.id),
    )
    .await;
    let out = String::from_utf8_lossy(&revoked.stdout);
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    assert!(
        out.contains(&format!("revoked {} (1 sign-ins)", client.id)),
        "{out}"
    );
    let (status, _) = flow.refresh(&client, &newer).await;
    assert_eq!(status, 401, "the revoked client's tokens are gone");
}

/// An operator who stops taking a document URL (the deny list, a restart)
/// cuts its client off everywhere: its refresh tokens are refused at the
/// token endpoint at once, without waiting for a sign-in.
#[actix_web::test]
async fn a_document_client_the_operator_stops_taking_is_refused_at_the_token_endpoint() {
    let google = crate::fake_google::start();
    let mut vars: Vec<(String, String)> = google.env();
    vars.extend(
        test_host_allowed()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v)),
    );
    let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (app, stoppable) =
        crate::helpers::start_stoppable(tempfile::tempdir().unwrap(), &refs).await;
    let flow = Flow::new(app, google);
    let (_host, client) = document_client(&flow, "Soon Denied").await;
    let login = flow.login(&client).await;
    let (_, tokens) = flow.exchange(&client, &login).await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    stoppable.stop().await;

    // The stopped instance still holds its store's lock: the new one runs
    // on a copy of its data directory (as a restore would).
    let copy = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", flow.app.dir.path().display()))
        .arg(copy.path())
        .status()
        .unwrap();
    assert!(status.success());
    let Flow { google, .. } = flow;
    let mut denied = refs.clone();
    denied.push(("DRAWBRIDGE_OAUTH__CIMD__DENIED", "localhost"));
    let (app, _stoppable) = crate::helpers::start_stoppable(copy, &denied).await;
    let flow = Flow::new(app, google);
    let (status, body) = flow.refresh(&client, &refresh).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );
}
