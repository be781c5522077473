//! HTTPS built in: `ENABLE_HTTPS` with `SSL_CERT_FILE` and `SSL_KEY_FILE`
//! (the test certificates under `tests/fixtures/tls/`).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::binary::drawbridge;
use crate::cimd_host::{ca_pem, fixture};
use crate::helpers::{free_port, spawn_app_with, TestApp};

fn port_of(app: &TestApp) -> u16 {
    app.address.rsplit(':').next().unwrap().parse().unwrap()
}

/// A client that trusts only `root_pem` (no other roots).
fn client_trusting(root_pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(root_pem).unwrap())
        .build()
        .unwrap()
}

async fn https_app(cert: &Path, key: &Path, extra: &[(&str, &str)]) -> TestApp {
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let mut vars = vec![
        ("ENABLE_HTTPS", "true"),
        ("SSL_CERT_FILE", cert.as_str()),
        ("SSL_KEY_FILE", key.as_str()),
    ];
    vars.extend_from_slice(extra);
    spawn_app_with(&vars).await
}

#[actix_web::test]
async fn with_enable_https_the_service_answers_over_tls_and_offers_http2() {
    let app = https_app(&fixture("localhost.pem"), &fixture("localhost.key"), &[]).await;
    let url = format!("https://localhost:{}/health/live", port_of(&app));
    let res = client_trusting(&ca_pem()).get(&url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.version(), reqwest::Version::HTTP_2, "h2 through ALPN");
    let http1 = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca_pem()).unwrap())
        .http1_only()
        .build()
        .unwrap();
    let res = http1.get(&url).send().await.unwrap();
    assert_eq!(
        (res.status().as_u16(), res.version()),
        (200, reqwest::Version::HTTP_11)
    );
    // Discovery advertises https (the base URL follows enable_https).
    let doc: serde_json::Value = http1
        .get(format!(
            "https://localhost:{}/.well-known/oauth-authorization-server",
            port_of(&app)
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        doc["issuer"].as_str().unwrap().starts_with("https://"),
        "{doc}"
    );
    // Plain HTTP on the same port is not served.
    assert!(
        reqwest::get(format!("http://127.0.0.1:{}/health/live", port_of(&app)))
            .await
            .map(|r| !r.status().is_success())
            .unwrap_or(true)
    );
}

#[actix_web::test]
async fn the_per_address_connection_cap_holds_over_tls() {
    let app = https_app(
        &fixture("localhost.pem"),
        &fixture("localhost.key"),
        &[("DRAWBRIDGE_SERVER__MAX_CONNECTIONS_PER_ADDRESS", "2")],
    )
    .await;
    let port = port_of(&app);
    // Two TLS connections held open.
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    for cert in tokio_rustls::rustls::pki_types::CertificateDer::pem_slice_iter(&ca_pem()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = Arc::new(
        tokio_rustls::rustls::ClientConfig::builder_with_provider(Arc::new(
            tokio_rustls::rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    let connector = tokio_rustls::TlsConnector::from(config);
    let mut held = Vec::new();
    for _ in 0..2 {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
        held.push(connector.connect(name, tcp).await.unwrap());
    }
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    let res = client_trusting(&ca_pem())
        .get(format!("https://localhost:{port}/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429, "the third connection from one address");
    drop(held);
}

#[actix_web::test]
async fn a_changed_certificate_is_served_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::copy(fixture("localhost.pem"), &cert).unwrap();
    std::fs::copy(fixture("localhost.key"), &key).unwrap();
    let app = https_app(&cert, &key, &[]).await;
    let url = format!("https://localhost:{}/health/live", port_of(&app));
    let other = std::fs::read(fixture("other.pem")).unwrap();
    assert!(
        client_trusting(&other).get(&url).send().await.is_err(),
        "the new certificate is not served yet"
    );
    // A bad pair (a key that is not the certificate's) is refused; the old
    // certificate stays in service.
    std::fs::copy(fixture("other.pem"), &cert).unwrap();
    actix_web::rt::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        client_trusting(&ca_pem())
            .get(&url)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    std::fs::copy(fixture("other.key"), &key).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(res) = client_trusting(&other).get(&url).send().await {
            assert_eq!(res.status(), 200);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was not put in service"
        );
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn https_start_up_errors_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let ca = fixture("ca.pem").display().to_string();
    let cert = fixture("localhost.pem").display().to_string();
    let key = fixture("localhost.key").display().to_string();
    let other_key = fixture("other.key").display().to_string();
    let missing = dir.path().join("missing.pem").display().to_string();
    type Case<'a> = (Vec<(&'a str, &'a str)>, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (
            vec![("ENABLE_HTTPS", "true")],
            vec!["server.ssl_cert_file", "required"],
        ),
        (
            vec![
                ("ENABLE_HTTPS", "true"),
                ("SSL_CERT_FILE", &ca),
                ("SSL_KEY_FILE", &key),
            ],
            vec!["ca.pem", "CA bundle", "server.ssl_cert_file"],
        ),
        (
            vec![
                ("ENABLE_HTTPS", "true"),
                ("SSL_CERT_FILE", &missing),
                ("SSL_KEY_FILE", &key),
            ],
            vec!["missing.pem", "no such file"],
        ),
        (
            vec![
                ("ENABLE_HTTPS", "true"),
                ("SSL_CERT_FILE", &cert),
                ("SSL_KEY_FILE", &cert),
            ],
            vec!["localhost.pem", "PKCS#8"],
        ),
        (
            vec![
                ("ENABLE_HTTPS", "true"),
                ("SSL_CERT_FILE", &cert),
                ("SSL_KEY_FILE", &other_key),
            ],
            vec!["localhost.pem", "other.key"],
        ),
    ];
    for (env, needles) in cases {
        let mut env = env;
        env.extend([
            ("MCP_PORT", "0"),
            ("CREDENTIAL_STORAGE_MODE", "MEMORY_ONLY"),
            (
                "DRAWBRIDGE_ADMIN_TOKEN",
                "https-test-admin-token-0123456789",
            ),
        ]);
        let out = drawbridge(dir.path(), &env).arg("serve").output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{env:?}: {stderr}");
        for needle in needles {
            assert!(
                stderr.contains(needle),
                "{env:?}: {stderr} should say {needle}"
            );
        }
    }
    // SSL_CERT_FILE alone (OpenSSL tools' trust store) changes nothing.
    let out = drawbridge(dir.path(), &[("SSL_CERT_FILE", &ca)])
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[actix_web::test]
async fn https_answers_carry_strict_transport_security_and_plain_ones_do_not() {
    let app = https_app(&fixture("localhost.pem"), &fixture("localhost.key"), &[]).await;
    let res = client_trusting(&ca_pem())
        .get(format!("https://localhost:{}/health/live", port_of(&app)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    let off = https_app(
        &fixture("localhost.pem"),
        &fixture("localhost.key"),
        &[("DRAWBRIDGE_SERVER__HSTS_MAX_AGE_SECONDS", "0")],
    )
    .await;
    let res = client_trusting(&ca_pem())
        .get(format!("https://localhost:{}/health/live", port_of(&off)))
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("strict-transport-security").is_none());
    let plain = spawn_app_with(&[]).await;
    let res = plain
        .client
        .get(plain.url("/health/live"))
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("strict-transport-security").is_none());
}

#[test]
fn sighup_puts_the_certificate_files_in_service_again() {
    let dir = tempfile::tempdir().unwrap();
    let cert = fixture("localhost.pem").display().to_string();
    let key = fixture("localhost.key").display().to_string();
    let mut server = crate::binary::start(
        dir.path(),
        &[
            ("ENABLE_HTTPS", "true"),
            ("SSL_CERT_FILE", &cert),
            ("SSL_KEY_FILE", &key),
            ("CREDENTIAL_STORAGE_MODE", "MEMORY_ONLY"),
            (
                "DRAWBRIDGE_ADMIN_TOKEN",
                "https-test-admin-token-0123456789",
            ),
        ],
    );
    let pid = server.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(5);
    let reloaded = loop {
        let out = server.output.lock().unwrap().clone();
        let found = out
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .any(|v| v["msg"] == "HTTPS certificate reloaded" && v["trigger"] == "SIGHUP");
        if found || Instant::now() > deadline {
            break found;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "SIGHUP stopped the server"
    );
    assert!(reloaded, "no reload logged after SIGHUP");
    let (status, _) = crate::binary::terminate(server);
    assert_eq!(status, 0);
}

#[actix_web::test]
async fn the_redirect_port_sends_plain_http_to_the_https_origin_and_readiness_reports_the_certificate(
) {
    let redirect = free_port().to_string();
    let app = https_app(
        &fixture("localhost.pem"),
        &fixture("localhost.key"),
        &[("DRAWBRIDGE_SERVER__HTTP_REDIRECT_PORT", &redirect)],
    )
    .await;
    let port = port_of(&app);
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = plain
        .get(format!(
            "http://127.0.0.1:{redirect}/oauth/authorize?client_id=x"
        ))
        .header("Host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 301);
    assert_eq!(
        res.headers()["location"],
        format!("https://127.0.0.1:{port}/oauth/authorize?client_id=x").as_str(),
        "the redirect goes to the base URL, whatever Host said"
    );
    let res = plain
        .post(format!("http://127.0.0.1:{redirect}/oauth/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 308, "the method and body are kept");

    let served =
        drawbridge::tls::load(&fixture("localhost.pem"), &fixture("localhost.key")).unwrap();
    let res = client_trusting(&ca_pem())
        .get(format!("https://localhost:{port}/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["certificate"]["state"], "valid", "{body}");
    assert_eq!(body["certificate"]["not_after"], served.not_after);
    assert!(body["certificate"]["days_left"].as_i64().unwrap() > 365);
    let metrics = client_trusting(&ca_pem())
        .get(format!("https://localhost:{port}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "drawbridge_tls_certificate_expiry_timestamp_seconds{{listener=\"public\"}} {}",
            served.not_after
        )),
        "{metrics}"
    );
}

#[actix_web::test]
async fn the_admin_listener_serves_https_with_the_servers_certificate_or_its_own() {
    for own in [false, true] {
        let admin = format!("127.0.0.1:{}", free_port());
        let (other_cert, other_key) = (
            fixture("other.pem").display().to_string(),
            fixture("other.key").display().to_string(),
        );
        let mut extra = vec![
            ("DRAWBRIDGE_ADMIN__LISTEN", admin.as_str()),
            ("DRAWBRIDGE_ADMIN__ENABLE_HTTPS", "true"),
        ];
        if own {
            extra.push(("DRAWBRIDGE_ADMIN__SSL_CERT_FILE", &other_cert));
            extra.push(("DRAWBRIDGE_ADMIN__SSL_KEY_FILE", &other_key));
        }
        let _app = https_app(&fixture("localhost.pem"), &fixture("localhost.key"), &extra).await;
        let root = if own {
            std::fs::read(fixture("other.pem")).unwrap()
        } else {
            ca_pem()
        };
        let url = format!("https://localhost:{}/admin/v1/clients", &admin[10..]);
        let res = client_trusting(&root)
            .get(&url)
            .bearer_auth(crate::helpers::ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "own certificate: {own}");
        let plain = reqwest::get(format!("http://{admin}/admin/v1/clients")).await;
        assert!(
            plain.map(|r| !r.status().is_success()).unwrap_or(true),
            "plain HTTP on the admin listener"
        );
        if own {
            // The server's CA does not vouch for the admin listener's own certificate.
            assert!(client_trusting(&ca_pem()).get(&url).send().await.is_err());
        }
    }
}

/// Whether curl speaks HTTP/2 here; without it the test is skipped,
/// except under CI, where .ci/run installs Debian's curl (with nghttp2).
fn curl_with_http2() -> bool {
    let version = std::process::Command::new("curl").arg("--version").output();
    let found = version.is_ok_and(|v| String::from_utf8_lossy(&v.stdout).contains("HTTP2"));
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "curl with HTTP/2 is required under CI=true"
        );
        eprintln!("skipped: the HTTP/2 refusal test needs curl with HTTP/2 (apt-get install curl); required under CI=true");
    }
    found
}

#[actix_web::test]
async fn over_http2_a_request_refused_before_its_body_is_read_still_gets_its_answer() {
    // An MCP client's first POST (no token yet) is refused with 401 before
    // its body is read. Over HTTP/2 the unread body got the stream reset
    // (CANCEL) right behind the answer, and curl (nghttp2) then reported
    // "stream 1 closed" (exit 92) instead of the 401 about one time in six;
    // likewise a registration refused by the rate limiter (429).
    if !curl_with_http2() {
        return;
    }
    let app = https_app(
        &fixture("localhost.pem"),
        &fixture("localhost.key"),
        &[("MAX_REGISTRATIONS_PER_MINUTE", "1")],
    )
    .await;
    let base = format!("https://localhost:{}", port_of(&app));
    let ca = fixture("ca.pem").display().to_string();
    let initialize = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"h2","version":"1"}}}"#;
    let registration =
        r#"{"redirect_uris":["http://127.0.0.1:9/cb"],"token_endpoint_auth_method":"none"}"#;
    let mut failures = Vec::new();
    for i in 0..120 {
        let (path, body, expected) = if i % 2 == 0 {
            ("/mcp", initialize, ["401"; 2])
        } else {
            ("/oauth/register", registration, ["201", "429"])
        };
        let args = [
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
            "--http2",
            "--cacert",
            &ca,
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-d",
            body,
            &format!("{base}{path}"),
        ]
        .map(str::to_owned);
        let out = actix_web::rt::task::spawn_blocking(move || {
            std::process::Command::new("curl")
                .args(args)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let written = String::from_utf8_lossy(&out.stdout).into_owned();
        let answered = written
            .strip_prefix("2 ")
            .is_some_and(|s| expected.contains(&s));
        if !(out.status.success() && answered) {
            failures.push(format!(
                "{path}: {written:?}, curl exit {:?}",
                out.status.code()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 120: {failures:#?}",
        failures.len()
    );
}
