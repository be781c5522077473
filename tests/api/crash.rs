//! Crash durability: the real binary (the release build when
//! `DRAWBRIDGE_TEST_BIN` names it, as `scripts/test.sh` does) serves
//! concurrent registrations, sign-ins, code exchanges and refreshes, is
//! killed with SIGKILL at a random moment, and restarts. Everything a client
//! had been told (a registration, a code, a token pair) must still work, and
//! nothing half-written may show up.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use reqwest::redirect::Policy;
use serde_json::{json, Value};

use crate::binary::{start, Running};
use crate::fake_google::{self, FakeGoogle};
use crate::login_flow::{consent_form, consent_page, field, pkce};

const ADMIN_TOKEN: &str = "crash-test-admin-token-0123456789abcdef";
const INTROSPECTION_SECRET: &str = "crash-test-introspection-secret-0123456789";
const WORKERS: usize = 8;

#[derive(Clone)]
struct Reg {
    id: String,
    secret: String,
    access: String,
}

struct Code {
    reg: Reg,
    code: String,
    verifier: String,
}

struct Pair {
    reg: Reg,
    access: String,
    refresh: String,
}

/// What the server acknowledged to its clients (full answers received).
#[derive(Default)]
struct Acked {
    regs: Vec<Reg>,
    codes: Vec<Code>,
    pairs: Vec<Pair>,
}

struct Target {
    base: String,
    redirect: String,
    api: reqwest::Client,
}

fn env(google: &FakeGoogle) -> Vec<(String, String)> {
    let mut vars = google.env();
    for (k, v) in [
        ("CREDENTIALS_DIR", "creds"),
        ("AUTH_ENCRYPTION_KEY_FILE", "key"),
        ("RATE_LIMIT_ENABLED", "false"),
        ("MAX_PROXY_CLIENTS", "100000"),
        ("DRAWBRIDGE_ADMIN_TOKEN", ADMIN_TOKEN),
        (
            "DRAWBRIDGE_OAUTH__INTROSPECTION_SECRET",
            INTROSPECTION_SECRET,
        ),
    ] {
        vars.push((k.into(), v.into()));
    }
    vars
}

/// One step of a client's life; `None` when the server did not answer fully
/// (it was killed), which ends the worker.
async fn register(t: &Target) -> Option<Reg> {
    let body = json!({
        "client_name": "crash test client",
        "redirect_uris": [t.redirect],
        "grant_types": ["authorization_code", "refresh_token"],
    });
    let res = t
        .api
        .post(format!("{}/oauth/register", t.base))
        .json(&body)
        .send()
        .await
        .ok()?;
    let status = res.status().as_u16();
    let v: Value = res.json().await.ok()?;
    assert_eq!(status, 201, "registration: {v}");
    Some(Reg {
        id: v["client_id"].as_str()?.into(),
        secret: v["client_secret"].as_str()?.into(),
        access: v["registration_access_token"].as_str()?.into(),
    })
}

async fn sign_in(t: &Target, reg: &Reg) -> Option<Code> {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::limited(10))
        .build()
        .unwrap();
    let (verifier, challenge) = pkce();
    let page = browser
        .get(format!("{}/oauth/authorize", t.base))
        .query(&[
            ("response_type", "code"),
            ("client_id", reg.id.as_str()),
            ("redirect_uri", t.redirect.as_str()),
            ("state", "s"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let form = [
        ("state", field(&page, "state")?),
        ("csrf", field(&page, "csrf")?),
        ("decision", "approve".to_owned()),
    ];
    let landed = browser
        .post(format!("{}/oauth/consent", t.base))
        .form(&form)
        .send()
        .await
        .ok()?;
    if landed.url().path() != "/client/callback" {
        return None;
    }
    let q: Value = landed.json().await.ok()?;
    Some(Code {
        reg: reg.clone(),
        code: q["code"].as_str()?.into(),
        verifier,
    })
}

async fn token(t: &Target, reg: &Reg, form: &[(&str, &str)]) -> Option<(u16, Value)> {
    let mut all = form.to_vec();
    all.push(("client_id", &reg.id));
    all.push(("client_secret", &reg.secret));
    let res = t
        .api
        .post(format!("{}/oauth/token", t.base))
        .form(&all)
        .send()
        .await
        .ok()?;
    let status = res.status().as_u16();
    Some((status, res.json().await.ok()?))
}

async fn exchange(t: &Target, c: &Code) -> Option<(u16, Value)> {
    token(
        t,
        &c.reg,
        &[
            ("grant_type", "authorization_code"),
            ("code", &c.code),
            ("redirect_uri", &t.redirect),
            ("code_verifier", &c.verifier),
        ],
    )
    .await
}

async fn refresh(t: &Target, p: &Pair) -> Option<(u16, Value)> {
    token(
        t,
        &p.reg,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &p.refresh),
        ],
    )
    .await
}

fn pair(reg: &Reg, v: &Value) -> Pair {
    Pair {
        reg: reg.clone(),
        access: v["access_token"].as_str().unwrap().into(),
        refresh: v["refresh_token"].as_str().unwrap().into(),
    }
}

/// A client's life until the server disappears: register, sign in, and
/// either keep the code, or redeem it (and sometimes refresh once).
async fn worker(t: Rc<Target>, acked: Rc<RefCell<Acked>>, n: usize) {
    let mut i = n;
    loop {
        i += WORKERS;
        let Some(reg) = register(&t).await else {
            return;
        };
        acked.borrow_mut().regs.push(reg.clone());
        let Some(code) = sign_in(&t, &reg).await else {
            return;
        };
        if i.is_multiple_of(3) {
            acked.borrow_mut().codes.push(code);
            continue;
        }
        let Some((status, v)) = exchange(&t, &code).await else {
            return;
        };
        assert_eq!(status, 200, "code exchange: {v}");
        let first = pair(&reg, &v);
        if i % 3 == 1 {
            acked.borrow_mut().pairs.push(first);
            continue;
        }
        // Refreshing rotates the pair: once asked, the old pair is no
        // longer the client's to rely on, answered or not.
        let Some((status, v)) = refresh(&t, &first).await else {
            return;
        };
        assert_eq!(status, 200, "refresh: {v}");
        acked.borrow_mut().pairs.push(pair(&reg, &v));
    }
}

fn kill9(running: &mut Running) {
    running.child.kill().expect("SIGKILL");
    let _ = running.child.wait();
}

/// Checks every acknowledged item against the restarted server; codes are
/// redeemed and pairs refreshed, so they are carried forward as new pairs.
async fn verify(t: &Target, acked: &mut Acked) {
    for reg in &acked.regs {
        let res = t
            .api
            .get(format!("{}/oauth/register/{}", t.base, reg.id))
            .bearer_auth(&reg.access)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200, "acknowledged registration lost");
    }
    for code in std::mem::take(&mut acked.codes) {
        let (status, v) = exchange(t, &code).await.unwrap();
        assert_eq!(status, 200, "acknowledged code lost: {v}");
        acked.pairs.push(pair(&code.reg, &v));
    }
    for p in std::mem::take(&mut acked.pairs) {
        let v: Value = t
            .api
            .post(format!("{}/oauth/introspect", t.base))
            .bearer_auth(INTROSPECTION_SECRET)
            .form(&[("token", p.access.as_str())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["active"], true, "acknowledged access token lost: {v}");
        let (status, v) = refresh(t, &p).await.unwrap();
        assert_eq!(status, 200, "acknowledged refresh token lost: {v}");
        acked.pairs.push(pair(&p.reg, &v));
    }
    // Nothing half-written: every stored client reads back whole through the
    // admin API, and the acknowledged ones are all among them.
    let mut listed = std::collections::HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut req = t
            .api
            .get(format!("{}/admin/v1/clients", t.base))
            .bearer_auth(ADMIN_TOKEN)
            .query(&[("limit", "500")]);
        if let Some(c) = &cursor {
            req = req.query(&[("cursor", c)]);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200);
        let page: Value = res.json().await.unwrap();
        for c in page["clients"].as_array().unwrap() {
            listed.insert(c["client_id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    for reg in &acked.regs {
        assert!(listed.contains(&reg.id), "{} not listed", reg.id);
    }
}

/// Starts the binary without blocking the test's thread (the fake Google
/// runs on it).
async fn start_in(dir: &std::path::Path, vars: &[(String, String)]) -> Running {
    let dir = dir.to_path_buf();
    let vars = vars.to_vec();
    actix_web::rt::task::spawn_blocking(move || {
        let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        start(&dir, &refs)
    })
    .await
    .unwrap()
}

fn random_delay(round: usize) -> Duration {
    let mut b = [0u8; 2];
    getrandom::fill(&mut b).unwrap();
    let jitter = u16::from_le_bytes(b) as u64 % 400;
    // Early, middle and late kill points (after the round's first
    // acknowledgements), each with jitter.
    Duration::from_millis(round as u64 * 450 + jitter)
}

#[actix_web::test]
async fn acknowledged_registrations_codes_and_tokens_survive_kill_9() {
    let google = fake_google::start();
    let dir = tempfile::tempdir().unwrap();
    let vars = env(&google);
    let api = reqwest::Client::builder()
        .redirect(Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut acked = Acked::default();
    for round in 0..3 {
        let mut server = start_in(dir.path(), &vars).await;
        let target = Rc::new(Target {
            base: format!("http://127.0.0.1:{}", server.port),
            redirect: google.client_callback(),
            api: api.clone(),
        });
        verify(&target, &mut acked).await;

        let shared = Rc::new(RefCell::new(std::mem::take(&mut acked)));
        let before = (
            shared.borrow().regs.len(),
            shared.borrow().codes.len(),
            shared.borrow().pairs.len(),
        );
        let workers = futures_util::future::join_all(
            (0..WORKERS).map(|n| worker(target.clone(), shared.clone(), n)),
        );
        let delay = random_delay(round);
        let progress = shared.clone();
        let killer = async {
            // The kill point counts from the first acknowledged registration
            // and grant of this round, so a slow machine still kills the
            // server mid-traffic rather than before anything was answered.
            let waiting = std::time::Instant::now();
            while waiting.elapsed() < Duration::from_secs(60) {
                let answered = {
                    let p = progress.borrow();
                    p.regs.len() > before.0 && p.codes.len() + p.pairs.len() > before.1 + before.2
                };
                if answered {
                    break;
                }
                actix_web::rt::time::sleep(Duration::from_millis(10)).await;
            }
            actix_web::rt::time::sleep(delay).await;
            kill9(&mut server);
        };
        futures_util::future::join(workers, killer).await;
        drop(progress);
        acked = Rc::try_unwrap(shared).ok().unwrap().into_inner();
        let added = (
            acked.regs.len() - before.0,
            acked.codes.len() + acked.pairs.len() - before.1 - before.2,
        );
        assert!(
            added.0 > 0 && added.1 > 0,
            "round {round}: the server acknowledged {added:?} before the kill at {delay:?}; too early to test anything"
        );
        eprintln!(
            "crash round {round}: killed after {delay:?}; acknowledged so far {} registrations, {} unredeemed codes, {} token pairs",
            acked.regs.len(),
            acked.codes.len(),
            acked.pairs.len()
        );
    }
    let server = start_in(dir.path(), &vars).await;
    let target = Target {
        base: format!("http://127.0.0.1:{}", server.port),
        redirect: google.client_callback(),
        api,
    };
    verify(&target, &mut acked).await;
    let _ = actix_web::rt::task::spawn_blocking(move || crate::binary::terminate(server)).await;
}

/// A sign-in approved (and sent to Google) just before a kill: the browser's
/// cookie jar, the sign-in link, and what the client needs to redeem.
struct Approved {
    jar: std::sync::Arc<reqwest::cookie::Jar>,
    link: String,
    client_id: String,
    verifier: String,
}

/// Registers a client that brings its own upstream (Google) client.
async fn register_custom(api: &reqwest::Client, base: &str, redirect: &str) -> (u16, Value) {
    let res = api
        .post(format!("{base}/oauth/register"))
        .json(&json!({
            "client_name": "crash test custom client",
            "redirect_uris": [redirect],
            "token_endpoint_auth_method": "none",
            "upstream_client_id": fake_google::CUSTOM_CLIENT_ID,
            "upstream_client_secret": fake_google::CUSTOM_CLIENT_SECRET,
        }))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// Authorizes and approves in a fresh browser; answers once Drawbridge's
/// redirect to Google has arrived (nothing more is asked of the server).
async fn approve(base: &str, redirect: &str, client_id: &str) -> Approved {
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let browser = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(Policy::none())
        .build()
        .unwrap();
    let (verifier, challenge) = pkce();
    let page = consent_page(&browser, base, client_id, redirect, &challenge, None).await;
    let form = consent_form(&page, "approve");
    let answer = browser
        .post(format!("{base}/oauth/consent"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 302);
    Approved {
        jar,
        link: answer.headers()["location"].to_str().unwrap().to_owned(),
        client_id: client_id.to_owned(),
        verifier,
    }
}

#[actix_web::test]
async fn a_custom_upstream_registration_and_an_approved_consent_survive_kill_9_right_after_their_answers(
) {
    let google = fake_google::start();
    let dir = tempfile::tempdir().unwrap();
    // A fixed port: the sign-in links name Drawbridge's callback URL.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut vars = env(&google);
    vars.push(("MCP_PORT".into(), port.to_string()));
    vars.push((
        "DRAWBRIDGE_OAUTH__ALLOW_CUSTOM_UPSTREAM_CLIENTS".into(),
        "true".into(),
    ));
    let base = format!("http://127.0.0.1:{port}");
    let redirect = google.client_callback();
    let api = reqwest::Client::builder()
        .redirect(Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut approved = Vec::new();
    for _ in 0..3 {
        // Killed the moment the registration is acknowledged...
        let mut server = start_in(dir.path(), &vars).await;
        let (status, reg) = register_custom(&api, &base, &redirect).await;
        kill9(&mut server);
        assert_eq!(status, 201, "{reg}");
        let client_id = reg["client_id"].as_str().unwrap().to_owned();
        // After the restart its sign-in still uses its own upstream secret.
        let mut server = start_in(dir.path(), &vars).await;
        let first = approve(&base, &redirect, &client_id).await;
        complete(&api, &base, &redirect, &first).await;
        assert_eq!(
            google.with(|s| s.custom_without_secret),
            0,
            "an acknowledged custom upstream secret was lost"
        );
        // Killed the moment a sign-in is approved and sent to Google.
        approved.push(approve(&base, &redirect, &client_id).await);
        kill9(&mut server);
    }
    let server = start_in(dir.path(), &vars).await;
    for a in &approved {
        complete(&api, &base, &redirect, a).await;
    }
    assert_eq!(
        google.with(|s| (s.exchanges.len(), s.custom_without_secret)),
        (2 * approved.len(), 0),
        "every sign-in used its client's custom upstream secret"
    );
    let _ = actix_web::rt::task::spawn_blocking(move || crate::binary::terminate(server)).await;
}

/// The approving browser comes back from Google; the client redeems its code.
async fn complete(api: &reqwest::Client, base: &str, redirect: &str, a: &Approved) {
    let browser = reqwest::Client::builder()
        .cookie_provider(a.jar.clone())
        .redirect(Policy::limited(10))
        .build()
        .unwrap();
    let landed = browser.get(&a.link).send().await.unwrap();
    let q: Value = landed.json().await.unwrap();
    let code = q["code"]
        .as_str()
        .unwrap_or_else(|| panic!("an acknowledged consent did not complete: {q}"));
    let res = api
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
            ("code_verifier", a.verifier.as_str()),
            ("client_id", a.client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
}
