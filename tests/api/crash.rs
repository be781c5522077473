//! Crash durability: the real binary (the release build when
//! `DRAWBRIDGE_TEST_BIN` names it, as `scripts/test.sh` does) serves
//! concurrent registrations, sign-ins, code exchanges and refreshes, is
//! killed with SIGKILL at a random moment, and restarts — on sled, and on
//! PostgreSQL. On PostgreSQL, the database itself is also restarted under
//! the same load while Drawbridge keeps running. Everything a client had
//! been told (a registration, a code, a token pair) must still work, and
//! nothing half-written may show up.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use reqwest::redirect::Policy;
use serde_json::{json, Value};

use crate::binary::{start, Running};
use crate::fake_google::{self, FakeGoogle};
use crate::login_flow::{consent_form, consent_page, field, pkce};
use crate::postgres_server::{fresh_database, shared_server, PrivateServer};

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
    /// PostgreSQL may be down: a 503 `temporarily_unavailable` with
    /// `Retry-After` acknowledges nothing, and the client tries again.
    outage: bool,
    /// 503 answers seen (with `outage`).
    refused: Cell<usize>,
    /// Set when the workers are to stop (with `outage`; a killed server
    /// stops them otherwise).
    stopping: Cell<bool>,
}

impl Target {
    fn new(port: u16, redirect: String, api: &reqwest::Client, outage: bool) -> Self {
        Self {
            base: format!("http://127.0.0.1:{port}"),
            redirect,
            api: api.clone(),
            outage,
            refused: Cell::new(0),
            stopping: Cell::new(false),
        }
    }

    /// Whether an answer is the refusal of an outage (checked to be the
    /// RFC answer a client can retry), counted.
    fn refused(&self, status: u16, retry_after: bool, v: &Value) -> bool {
        if !(self.outage && status == 503) {
            return false;
        }
        assert_eq!(v["error"], "temporarily_unavailable", "{v}");
        assert!(retry_after, "a 503 without Retry-After: {v}");
        self.refused.set(self.refused.get() + 1);
        true
    }
}

/// Where the records are kept: `storage` variables for the binary.
fn on_postgres(database_url: &str) -> Vec<(String, String)> {
    vec![
        ("DRAWBRIDGE_STORAGE__BACKEND".into(), "postgres".into()),
        ("DATABASE_URL".into(), database_url.into()),
        // Answers refused while the database is down come back quickly.
        (
            "DRAWBRIDGE_STORAGE__STATEMENT_TIMEOUT_MS".into(),
            "1000".into(),
        ),
    ]
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
/// (it was killed) or refused for now (PostgreSQL is down).
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
    let retry_after = res.headers().contains_key("retry-after");
    let v: Value = res.json().await.ok()?;
    if t.refused(status, retry_after, &v) {
        return None;
    }
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
    let retry_after = res.headers().contains_key("retry-after");
    let v: Value = res.json().await.ok()?;
    if t.refused(status, retry_after, &v) {
        return None;
    }
    Some((status, v))
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

/// Clients' lives until the server disappears (or, through an outage,
/// until told to stop).
async fn worker(t: Rc<Target>, acked: Rc<RefCell<Acked>>, n: usize) {
    let mut i = n;
    while !t.stopping.get() {
        i += WORKERS;
        if life(&t, &acked, i).await.is_none() {
            if !t.outage {
                return;
            }
            actix_web::rt::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A client's life: register, sign in, and either keep the code, or redeem
/// it (and sometimes refresh once); `None` at the first step not answered.
async fn life(t: &Target, acked: &RefCell<Acked>, i: usize) -> Option<()> {
    let reg = register(t).await?;
    acked.borrow_mut().regs.push(reg.clone());
    let code = sign_in(t, &reg).await?;
    if i.is_multiple_of(3) {
        acked.borrow_mut().codes.push(code);
        return Some(());
    }
    // Asked to redeem or refresh, the client no longer relies on what it
    // presented, answered or not (a refresh rotates the pair).
    let (status, v) = exchange(t, &code).await?;
    assert_eq!(status, 200, "code exchange: {v}");
    let first = pair(&reg, &v);
    if i % 3 == 1 {
        acked.borrow_mut().pairs.push(first);
        return Some(());
    }
    let (status, v) = refresh(t, &first).await?;
    assert_eq!(status, 200, "refresh: {v}");
    acked.borrow_mut().pairs.push(pair(&reg, &v));
    Some(())
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
        let (status, v) = exchange(t, &code).await.expect("an answer other than 503");
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
        let (status, v) = refresh(t, &p).await.expect("an answer other than 503");
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

/// What interrupts the traffic of each round.
enum Fault<'a> {
    /// Drawbridge is killed with SIGKILL and started again.
    KillDrawbridge,
    /// PostgreSQL (a server of the test's own) is stopped at once and
    /// started again; Drawbridge keeps running.
    RestartPostgres(&'a PrivateServer),
}

/// Three rounds of traffic, each interrupted by `fault` at a random moment;
/// then every acknowledged item is checked on the server that runs after.
async fn acknowledged_items_survive(storage: Vec<(String, String)>, fault: Fault<'_>) {
    let google = fake_google::start();
    let dir = tempfile::tempdir().unwrap();
    let mut vars = env(&google);
    vars.extend(storage);
    let api = reqwest::Client::builder()
        .redirect(Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let outage = matches!(fault, Fault::RestartPostgres(_));
    let mut acked = Acked::default();
    let mut server: Option<Running> = None;
    let mut refused = 0;
    for round in 0..3 {
        if server.is_none() {
            server = Some(start_in(dir.path(), &vars).await);
        }
        let port = server.as_ref().unwrap().port;
        let target = Rc::new(Target::new(port, google.client_callback(), &api, outage));
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
        let interrupt = async {
            // The fault strikes counting from the first acknowledged
            // registration and grant of this round, so a slow machine still
            // meets it mid-traffic rather than before anything was answered.
            until(|| {
                let p = progress.borrow();
                p.regs.len() > before.0 && p.codes.len() + p.pairs.len() > before.1 + before.2
            })
            .await;
            actix_web::rt::time::sleep(delay).await;
            match fault {
                Fault::KillDrawbridge => kill9(server.as_mut().unwrap()),
                Fault::RestartPostgres(postgres) => {
                    restart_under_load(postgres, &target, &progress).await;
                }
            }
        };
        futures_util::future::join(workers, interrupt).await;
        if !outage {
            server = None;
        }
        drop(progress);
        refused += target.refused.get();
        acked = Rc::try_unwrap(shared).ok().unwrap().into_inner();
        let added = (
            acked.regs.len() - before.0,
            acked.codes.len() + acked.pairs.len() - before.1 - before.2,
        );
        assert!(
            added.0 > 0 && added.1 > 0,
            "round {round}: the server acknowledged {added:?} before the fault at {delay:?}; too early to test anything"
        );
        eprintln!(
            "crash round {round}: fault after {delay:?}; acknowledged so far {} registrations, {} unredeemed codes, {} token pairs; {} answers refused with 503",
            acked.regs.len(),
            acked.codes.len(),
            acked.pairs.len(),
            target.refused.get(),
        );
    }
    if outage {
        assert!(
            refused > 0,
            "no request met the restarts: the test proved nothing"
        );
    }
    let server = match server {
        Some(running) => running,
        None => start_in(dir.path(), &vars).await,
    };
    let target = Target::new(server.port, google.client_callback(), &api, false);
    verify(&target, &mut acked).await;
    let _ = actix_web::rt::task::spawn_blocking(move || crate::binary::terminate(server)).await;
}

/// Waits (at most 60 s) until `done` holds.
async fn until(done: impl Fn() -> bool) {
    let waiting = std::time::Instant::now();
    while waiting.elapsed() < Duration::from_secs(60) && !done() {
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Stops PostgreSQL under the workers' load and starts it again; Drawbridge,
/// never restarted, must be ready again by itself within 15 s and
/// acknowledge new registrations; then the workers stop.
async fn restart_under_load(postgres: &PrivateServer, t: &Target, progress: &RefCell<Acked>) {
    postgres.stop().await;
    actix_web::rt::time::sleep(random_delay(0)).await;
    postgres.resume().await;
    let back = std::time::Instant::now();
    let ready = format!("{}/health/ready", t.base);
    loop {
        let answer = t.api.get(&ready).send().await.map(|r| r.status().as_u16());
        if matches!(answer, Ok(200)) {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "Drawbridge not ready 15 s after PostgreSQL came back: {answer:?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    let regs = progress.borrow().regs.len();
    until(|| progress.borrow().regs.len() > regs).await;
    assert!(
        progress.borrow().regs.len() > regs,
        "no registration acknowledged after PostgreSQL came back"
    );
    t.stopping.set(true);
}

#[actix_web::test]
async fn acknowledged_registrations_codes_and_tokens_survive_kill_9() {
    acknowledged_items_survive(Vec::new(), Fault::KillDrawbridge).await;
}

#[actix_web::test]
async fn acknowledged_registrations_codes_and_tokens_survive_kill_9_on_postgresql() {
    let Some(server) = shared_server("the crash tests on PostgreSQL") else {
        return;
    };
    let database = fresh_database(&server).await;
    acknowledged_items_survive(on_postgres(&database), Fault::KillDrawbridge).await;
}

#[actix_web::test]
async fn acknowledged_registrations_codes_and_tokens_survive_postgresql_restarting_mid_load() {
    let Some(postgres) = PrivateServer::start("the PostgreSQL restart test").await else {
        return;
    };
    let storage = on_postgres(&postgres.url);
    acknowledged_items_survive(storage, Fault::RestartPostgres(&postgres)).await;
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
