//! Automatic certificates against a real ACME server: Debian's `pebble`
//! (with `pebble-challtestsrv` as its DNS, answering 127.0.0.1 for every
//! name), issuing short-lived certificates. The real binary runs with
//! `tls.acme.*`: it answers the HTTP-01 challenge on its redirect port,
//! serves the issued chain, renews it, keeps it across a restart, and keeps
//! serving it while the ACME server is down.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::binary::{start, terminate, Running};
use crate::cimd_host::fixture;
use crate::helpers::free_port;

const DOMAIN: &str = "drawbridge.test";
/// Lifetime of pebble's certificates: renewal is due after two thirds.
const VALIDITY_SECONDS: u64 = 45;

/// Whether pebble is installed; without it the test is skipped, except
/// under CI, where scripts/test.sh installs it.
fn pebble_available() -> bool {
    let found = Command::new("pebble")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "pebble is required under CI=true (scripts/test.sh installs it)"
        );
        eprintln!("skipped: the ACME test needs pebble (apt-get install pebble, as root); required under CI=true");
    }
    found
}

/// pebble and its DNS, killed when dropped.
struct Pebble {
    children: Vec<Child>,
    directory: String,
    management: String,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn start_pebble(dir: &Path, http01_port: u16) -> Pebble {
    let (listen, management, dns) = (free_port(), free_port(), free_port());
    let config = serde_json::json!({"pebble": {
        "listenAddress": format!("127.0.0.1:{listen}"),
        "managementListenAddress": format!("127.0.0.1:{management}"),
        "certificate": fixture("localhost.pem"),
        "privateKey": fixture("localhost.key"),
        "httpPort": http01_port,
        "tlsPort": free_port(),
        "ocspResponderURL": "",
        "externalAccountBindingRequired": false,
        "certificateValidityPeriod": VALIDITY_SECONDS,
    }});
    let path = dir.join("pebble.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let dns_server = Command::new("pebble-challtestsrv")
        .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
        .args(["-dns01", &format!("127.0.0.1:{dns}")])
        .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
        .args(["-management", &format!("127.0.0.1:{}", free_port())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pebble-challtestsrv starts");
    let pebble = Command::new("pebble")
        .args(["-config", path.to_str().unwrap()])
        .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", "0")
        .env("PEBBLE_AUTHZREUSE", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pebble starts");
    Pebble {
        children: vec![dns_server, pebble],
        directory: format!("https://127.0.0.1:{listen}/dir"),
        management: format!("https://127.0.0.1:{management}"),
    }
}

/// A client trusting only the test CA (pebble's own HTTPS).
fn test_ca_client() -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(fixture("ca.pem")).unwrap()).unwrap(),
        )
        .build()
        .unwrap()
}

/// Polls `check` every 250 ms until it answers, for at most `limit`.
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    limit: Duration,
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        actix_web::rt::time::sleep(Duration::from_millis(250)).await;
    }
}

/// What Drawbridge's HTTPS port serves for `DOMAIN`, checked against
/// pebble's root: the readiness answer and the leaf certificate (DER).
async fn served(root_pem: &[u8], port: u16) -> Option<(u16, serde_json::Value, Vec<u8>)> {
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(root_pem).ok()?)
        .resolve(DOMAIN, ([127, 0, 0, 1], port).into())
        .tls_info(true)
        .build()
        .ok()?;
    let res = client
        .get(format!("https://{DOMAIN}:{port}/health/ready"))
        .send()
        .await
        .ok()?;
    let leaf = res
        .extensions()
        .get::<reqwest::tls::TlsInfo>()?
        .peer_certificate()?
        .to_vec();
    let status = res.status().as_u16();
    Some((status, res.json().await.ok()?, leaf))
}

fn output(running: &Running) -> String {
    running.output.lock().unwrap().clone()
}

#[actix_web::test]
async fn acme_issues_renews_keeps_across_a_restart_and_survives_a_failing_ca() {
    if !pebble_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let redirect_port = free_port();
    let pebble = start_pebble(dir.path(), redirect_port);
    let ca = test_ca_client();
    let root = eventually(Duration::from_secs(20), "pebble's root", || {
        let (ca, url) = (ca.clone(), format!("{}/roots/0", pebble.management));
        async move {
            let res = ca.get(url).send().await.ok()?;
            res.status().is_success().then_some(())?;
            res.bytes().await.ok().map(|b| b.to_vec())
        }
    })
    .await;
    let ca_file = fixture("ca.pem").display().to_string();
    let directory = pebble.directory.clone();
    let redirect = redirect_port.to_string();
    let env = [
        ("CREDENTIALS_DIR", "creds"),
        ("ENABLE_HTTPS", "true"),
        ("DRAWBRIDGE_SERVER__HTTP_REDIRECT_PORT", redirect.as_str()),
        ("DRAWBRIDGE_TLS__ACME__DOMAINS", DOMAIN),
        ("DRAWBRIDGE_TLS__ACME__DIRECTORY_URL", directory.as_str()),
        ("DRAWBRIDGE_TLS__ACME__CA_FILE", ca_file.as_str()),
        (
            "DRAWBRIDGE_TLS__ACME__CONTACT",
            "mailto:ops@drawbridge.test",
        ),
        ("DRAWBRIDGE_TLS__ACME__RETRY_SECONDS", "1"),
    ];
    let server = start(dir.path(), &env);
    let port = server.port;

    // Issued: the HTTPS port serves a chain pebble's root accepts.
    let (status, ready, first) =
        eventually(Duration::from_secs(30), "the first certificate", || {
            let root = root.clone();
            async move { served(&root, port).await.filter(|(s, _, _)| *s == 200) }
        })
        .await;
    assert_eq!(status, 200, "{ready}");
    assert_ne!(ready["certificate"]["state"], "pending", "{ready}");
    assert!(output(&server).contains("\"event_type\":\"certificate_issued\""));
    // The redirect port sends everything else to HTTPS.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = plain
        .get(format!("http://127.0.0.1:{redirect_port}/health/live?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 301);
    assert_eq!(
        res.headers()["location"],
        format!("https://127.0.0.1:{port}/health/live?x=1").as_str()
    );
    let res = plain
        .get(format!(
            "http://127.0.0.1:{redirect_port}/.well-known/acme-challenge/unknown"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "no challenge is pending");

    // Renewed once two thirds of its life are gone.
    let (_, _, second) = eventually(Duration::from_secs(VALIDITY_SECONDS), "the renewal", || {
        let (root, first) = (root.clone(), first.clone());
        async move {
            served(&root, port)
                .await
                .filter(|(_, _, leaf)| *leaf != first)
        }
    })
    .await;
    assert!(output(&server).contains("\"event_type\":\"certificate_renewed\""));

    // The CA goes away; a restart serves the stored certificate at once.
    drop(pebble);
    let (code, _) = terminate(server);
    assert_eq!(code, 0);
    let server = start(dir.path(), &env);
    let port = server.port;
    let (status, ready, after_restart) = served(&root, port)
        .await
        .expect("the restarted server serves its stored certificate");
    assert_eq!(status, 200, "{ready}");
    assert_eq!(
        after_restart, second,
        "the stored certificate is the renewed one"
    );

    // Its renewal fails against the dead CA: logged, retried, and the
    // certificate in service stays.
    eventually(
        Duration::from_secs(VALIDITY_SECONDS),
        "a failed renewal",
        || {
            let log = output(&server);
            async move {
                log.contains("\"event_type\":\"certificate_order_failed\"")
                    .then_some(())
            }
        },
    )
    .await;
    let (_, _, still) = served(&root, port).await.expect("still served");
    assert_eq!(still, second, "a failed renewal replaced the certificate");
    terminate(server);
}
