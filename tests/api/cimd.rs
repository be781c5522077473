//! Client ID Metadata Documents: fetching a client's document from a real
//! HTTPS host, and every way a host can fail or try to abuse the fetch.

use std::time::Duration;

use serde_json::json;

use drawbridge::cimd::{fetch, validate, DocumentError, DocumentUrl, FetchError, FetchPolicy};
use drawbridge::domain::{AuthMethod, RegistrationPolicy, ScopeSet};

use crate::cimd_host::{self, ok, Answer, CimdHost};

/// Loopback is special-use: these tests allow it (the host runs there) and
/// trust the test CA, exactly as an operator's test set-up would.
fn policy() -> FetchPolicy {
    FetchPolicy {
        allow_special_use_addresses: true,
        extra_roots_pem: vec![cimd_host::ca_pem()],
        connect_timeout: Duration::from_secs(1),
        total_timeout: Duration::from_secs(2),
        ..FetchPolicy::default()
    }
}

fn registration_policy() -> RegistrationPolicy {
    RegistrationPolicy {
        allowed_redirect_uris: Vec::new(),
        supported_scopes: ScopeSet::parse("openid email profile", false).unwrap(),
        google_scope_aliases: false,
        allow_custom_upstream_clients: false,
    }
}

fn document(host: &CimdHost, path: &str) -> Vec<u8> {
    json!({
        "client_id": host.url(path),
        "client_name": "Test client",
        "redirect_uris": ["http://127.0.0.1:33418/callback"],
        "grant_types": ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
        "token_endpoint_auth_method": "none",
    })
    .to_string()
    .into_bytes()
}

async fn fetched(host: &CimdHost, path: &str) -> Result<drawbridge::cimd::Fetched, FetchError> {
    fetch(&DocumentUrl::parse(&host.url(path)).unwrap(), &policy()).await
}

#[actix_web::test]
async fn a_clients_document_is_fetched_over_https_and_becomes_a_public_client() {
    let host = cimd_host::start().await;
    let body = document(&host, "/client.json");
    host.answer(
        "/client.json",
        ok(
            "application/json; charset=utf-8",
            "cache-control: max-age=300\r\n",
            &body,
        ),
    );
    let got = fetched(&host, "/client.json").await.unwrap();
    assert_eq!(got.body, body);
    assert_eq!(got.cache_control.as_deref(), Some("max-age=300"));
    let url = DocumentUrl::parse(&host.url("/client.json")).unwrap();
    let meta = validate(&url, &got.body, &registration_policy()).unwrap();
    assert_eq!(meta.auth_method, AuthMethod::None);
    // No cookie, no credential goes to the document's host.
    let seen = host.seen.lock().unwrap().join("\n").to_ascii_lowercase();
    assert!(
        !seen.contains("cookie:") && !seen.contains("authorization:"),
        "{seen}"
    );
}

#[actix_web::test]
async fn a_redirect_is_not_followed() {
    let host = cimd_host::start().await;
    host.answer(
        "/moved",
        Answer::Raw(
            format!(
                "HTTP/1.1 302 Found\r\nlocation: {}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                host.url("/target")
            )
            .into_bytes(),
        ),
    );
    let body = document(&host, "/target");
    host.answer("/target", ok("application/json", "", &body));
    assert_eq!(
        fetched(&host, "/moved").await.unwrap_err(),
        FetchError::Status(302)
    );
    assert_eq!(host.requests_for("/target"), 0, "the redirect was followed");
}

#[actix_web::test]
async fn only_a_200_served_as_json_counts() {
    let host = cimd_host::start().await;
    assert_eq!(
        fetched(&host, "/missing").await.unwrap_err(),
        FetchError::Status(404)
    );
    let body = document(&host, "/html");
    host.answer("/html", ok("text/html", "", &body));
    assert_eq!(
        fetched(&host, "/html").await.unwrap_err(),
        FetchError::NotJson
    );
    host.answer("/none", ok("", "", &body));
    assert_eq!(
        fetched(&host, "/none").await.unwrap_err(),
        FetchError::NotJson
    );
}

#[actix_web::test]
async fn an_oversized_document_is_refused_whether_or_not_it_says_its_length() {
    let host = cimd_host::start().await;
    let big = format!(
        "{{\"client_id\":\"x\",\"pad\":\"{}\"}}",
        "a".repeat(6 * 1024)
    );
    host.answer("/big", ok("application/json", "", big.as_bytes()));
    assert_eq!(
        fetched(&host, "/big").await.unwrap_err(),
        FetchError::TooLarge(5 * 1024)
    );
    // Chunked, no length announced: cut off while reading.
    let mut raw = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".to_vec();
    for _ in 0..8 {
        raw.extend_from_slice(format!("400\r\n{}\r\n", "b".repeat(1024)).as_bytes());
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    host.answer("/chunked", Answer::Raw(raw));
    assert_eq!(
        fetched(&host, "/chunked").await.unwrap_err(),
        FetchError::TooLarge(5 * 1024)
    );
}

#[actix_web::test]
async fn a_host_that_answers_slowly_is_given_up_on_in_time() {
    let host = cimd_host::start().await;
    let body = document(&host, "/slow");
    host.answer(
        "/slow",
        Answer::Slow(Duration::from_secs(10), ok_bytes(&body)),
    );
    let started = std::time::Instant::now();
    assert_eq!(
        fetched(&host, "/slow").await.unwrap_err(),
        FetchError::Timeout
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

fn ok_bytes(body: &[u8]) -> Vec<u8> {
    match ok("application/json", "", body) {
        Answer::Raw(b) => b,
        Answer::Slow(_, b) => b,
    }
}

#[actix_web::test]
async fn a_document_that_names_another_client_or_a_shared_secret_is_refused() {
    let host = cimd_host::start().await;
    let url = DocumentUrl::parse(&host.url("/client.json")).unwrap();
    let other =
        json!({"client_id": host.url("/other.json"), "redirect_uris": ["http://127.0.0.1:1/cb"]});
    host.answer(
        "/client.json",
        ok("application/json", "", other.to_string().as_bytes()),
    );
    let got = fetched(&host, "/client.json").await.unwrap();
    assert_eq!(
        validate(&url, &got.body, &registration_policy()).unwrap_err(),
        DocumentError::ClientIdMismatch
    );
    let secret = json!({"client_id": host.url("/client.json"), "redirect_uris": ["http://127.0.0.1:1/cb"], "token_endpoint_auth_method": "client_secret_basic"});
    host.answer(
        "/client.json",
        ok("application/json", "", secret.to_string().as_bytes()),
    );
    let got = fetched(&host, "/client.json").await.unwrap();
    assert!(matches!(
        validate(&url, &got.body, &registration_policy()).unwrap_err(),
        DocumentError::SharedSecret(_)
    ));
}

#[actix_web::test]
async fn without_the_operators_allowance_a_name_that_resolves_to_loopback_is_never_contacted() {
    let host = cimd_host::start().await;
    let body = document(&host, "/client.json");
    host.answer("/client.json", ok("application/json", "", &body));
    let strict = FetchPolicy {
        extra_roots_pem: vec![cimd_host::ca_pem()],
        ..FetchPolicy::default()
    };
    for url in [
        host.url("/client.json"),
        format!("https://127.0.0.1:{}/client.json", host.port),
        format!("https://[::ffff:127.0.0.1]:{}/client.json", host.port),
    ] {
        let err = fetch(&DocumentUrl::parse(&url).unwrap(), &strict)
            .await
            .unwrap_err();
        assert_eq!(err, FetchError::SpecialUseAddress, "{url}");
    }
    assert!(
        host.seen.lock().unwrap().is_empty(),
        "the host was contacted"
    );
}

#[actix_web::test]
async fn a_host_whose_certificate_is_not_trusted_is_refused() {
    let host = cimd_host::start().await;
    let body = document(&host, "/client.json");
    host.answer("/client.json", ok("application/json", "", &body));
    let untrusting = FetchPolicy {
        extra_roots_pem: Vec::new(),
        ..policy()
    };
    let err = fetch(
        &DocumentUrl::parse(&host.url("/client.json")).unwrap(),
        &untrusting,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, FetchError::Transport(_)), "{err:?}");
}
