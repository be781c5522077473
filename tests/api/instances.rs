//! Several instances on one PostgreSQL database: three binaries (the
//! release build under `scripts/test.sh`) share one fresh database and one
//! key, and requests are spread over them the way a load balancer would.
//! What must happen once happens once across all three; what one instance
//! changes, the others see at the next request.
//!
//! Needs the test server `scripts/test.sh` starts
//! (`DRAWBRIDGE_TEST_DATABASE_URL`): without it these tests skip with one
//! line on a developer's machine, and fail under `CI=true`.

use std::time::{Duration, Instant};

use reqwest::redirect::Policy;
use serde_json::{json, Value};

use crate::binary::{start, Running};
use crate::fake_google::{self, FakeGoogle};
use crate::login_flow::{field, pkce};
use crate::postgres_server::{fresh_database, shared_server};

const ADMIN: &str = "instances-test-admin-token-0123456789abcdef";
const INTROSPECTION: &str = "instances-test-introspection-secret-012345";
/// One key for every instance (base64 of 32 bytes), as operators share the key file.
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// Three instances on one database.
struct Cluster {
    instances: Vec<Option<Running>>,
    ports: Vec<u16>,
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    api: reqwest::Client,
}

impl Cluster {
    async fn start(google: &FakeGoogle, extra: &[(&str, &str)]) -> Option<Self> {
        let server = shared_server("the multi-instance tests")?;
        let database = fresh_database(&server).await;
        let ports: Vec<u16> = (0..3).map(|_| crate::helpers::free_port()).collect();
        let mut env = google.env();
        for (k, v) in [
            ("DRAWBRIDGE_STORAGE__BACKEND", "postgres"),
            ("DATABASE_URL", database.as_str()),
            ("AUTH_ENCRYPTION_KEY", KEY),
            // Every instance answers for the one public address (here the
            // first instance's; behind a load balancer, the balancer's).
            ("BASE_URL", &format!("http://127.0.0.1:{}", ports[0])),
            ("RATE_LIMIT_ENABLED", "false"),
            ("DRAWBRIDGE_ADMIN_TOKEN", ADMIN),
            ("DRAWBRIDGE_OAUTH__INTROSPECTION_SECRET", INTROSPECTION),
        ]
        .into_iter()
        .chain(extra.iter().copied())
        {
            env.push((k.to_owned(), v.to_owned()));
        }
        let mut cluster = Self {
            instances: Vec::new(),
            ports,
            dir: tempfile::tempdir().unwrap(),
            env,
            api: reqwest::Client::builder()
                .redirect(Policy::none())
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
        };
        for i in 0..3 {
            let running = cluster.launch(i).await;
            cluster.instances.push(Some(running));
        }
        Some(cluster)
    }

    async fn launch(&self, i: usize) -> Running {
        let mut vars = self.env.clone();
        vars.push(("MCP_PORT".into(), self.ports[i].to_string()));
        vars.push(("CREDENTIALS_DIR".into(), format!("creds{i}")));
        let dir = self.dir.path().to_path_buf();
        actix_web::rt::task::spawn_blocking(move || {
            let refs: Vec<(&str, &str)> =
                vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            start(&dir, &refs)
        })
        .await
        .unwrap()
    }

    fn base(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.ports[i])
    }

    fn url(&self, i: usize, path: &str) -> String {
        format!("{}{path}", self.base(i))
    }

    /// A URL of the public address, sent to instance `i` instead.
    fn on(&self, i: usize, public: &str) -> String {
        public.replacen(&self.base(0), &self.base(i), 1)
    }

    fn kill9(&mut self, i: usize) {
        if let Some(mut running) = self.instances[i].take() {
            running.child.kill().unwrap();
            let _ = running.child.wait();
        }
    }

    async fn register(&self, i: usize, redirect: &str) -> Value {
        let res = self
            .api
            .post(self.url(i, "/oauth/register"))
            .json(&json!({
                "client_name": "instances test",
                "redirect_uris": [redirect],
                "grant_types": ["authorization_code", "refresh_token"],
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 201);
        res.json().await.unwrap()
    }

    /// A sign-in whose steps land on instances `on[0]` (authorize), `on[1]`
    /// (consent) and `on[2]` (the upstream callback); answers the code and
    /// the PKCE verifier.
    async fn sign_in(&self, client: &Value, redirect: &str, on: [usize; 3]) -> (String, String) {
        let browser = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .build()
            .unwrap();
        let (verifier, challenge) = pkce();
        let page = browser
            .get(self.url(on[0], "/oauth/authorize"))
            .query(&[
                ("response_type", "code"),
                ("client_id", client["client_id"].as_str().unwrap()),
                ("redirect_uri", redirect),
                ("state", "s"),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
            ])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let form = [
            ("state", field(&page, "state").expect("a consent page")),
            ("csrf", field(&page, "csrf").unwrap()),
            ("decision", "approve".to_owned()),
        ];
        let to_google = browser
            .post(self.url(on[1], "/oauth/consent"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(
            to_google.status().as_u16(),
            302,
            "consent on instance {}",
            on[1]
        );
        let back = location(&to_google);
        let from_google = browser.get(&back).send().await.unwrap();
        let callback = location(&from_google);
        assert!(callback.starts_with(&self.base(0)), "{callback}");
        let done = browser.get(self.on(on[2], &callback)).send().await.unwrap();
        assert_eq!(
            done.status().as_u16(),
            302,
            "callback on instance {}",
            on[2]
        );
        let to_client = url::Url::parse(&location(&done)).unwrap();
        let code = to_client
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .expect("a code for the client");
        (code, verifier)
    }

    async fn token(&self, i: usize, client: &Value, form: &[(&str, &str)]) -> (u16, Value) {
        let mut all = form.to_vec();
        all.push(("client_id", client["client_id"].as_str().unwrap()));
        all.push(("client_secret", client["client_secret"].as_str().unwrap()));
        let res = self
            .api
            .post(self.url(i, "/oauth/token"))
            .form(&all)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }

    /// The authorization-code grant at instance `i`.
    async fn exchange(
        &self,
        i: usize,
        client: &Value,
        code: &str,
        redirect: &str,
        verifier: &str,
    ) -> (u16, Value) {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
        ];
        self.token(i, client, &form).await
    }

    async fn active(&self, i: usize, token: &str) -> bool {
        let v: Value = self
            .api
            .post(self.url(i, "/oauth/introspect"))
            .bearer_auth(INTROSPECTION)
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["active"] == true
    }

    async fn metric(&self, i: usize, name: &str) -> Option<f64> {
        let text = self
            .api
            .get(self.url(i, "/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    }
}

fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .unwrap_or_else(|| panic!("a redirect, got {}", res.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

#[actix_web::test]
async fn a_sign_in_spread_over_three_instances_works_and_a_revocation_on_one_holds_on_all() {
    let google = fake_google::start();
    let Some(c) = Cluster::start(&google, &[]).await else {
        return;
    };
    let redirect = google.client_callback();
    let client = c.register(1, &redirect).await;
    // Authorize on the first, consent on the second, callback on the third,
    // the code exchanged on the first.
    let (code, verifier) = c.sign_in(&client, &redirect, [0, 1, 2]).await;
    let (status, pair) = c.exchange(0, &client, &code, &redirect, &verifier).await;
    assert_eq!(status, 200, "{pair}");
    let access = pair["access_token"].as_str().unwrap();
    let refresh = pair["refresh_token"].as_str().unwrap();
    for i in 0..3 {
        assert!(c.active(i, access).await, "instance {i} knows the token");
    }
    // Each instance reports the shared database as its store, and its calls.
    for i in 0..3 {
        let ready: Value = c
            .api
            .get(c.url(i, "/health/ready"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(ready["status"], "ready", "{ready}");
        assert_eq!(ready["storage"]["backend"], "postgres", "{ready}");
        let calls = c
            .metric(
                i,
                r#"drawbridge_db_calls_total{operation="get",outcome="ok"}"#,
            )
            .await;
        assert!(calls >= Some(1.0), "instance {i}: {calls:?}");
        assert_eq!(
            c.metric(i, r#"drawbridge_db_pool_connections{state="max"}"#)
                .await,
            Some(16.0)
        );
    }
    // The code is spent everywhere.
    let (status, _) = c.exchange(2, &client, &code, &redirect, &verifier).await;
    assert_eq!(status, 400);

    // A new sign-in: refresh on one instance, the retry on another gets the
    // same pair (the sealed successor, not a process's memory).
    let (code, verifier) = c.sign_in(&client, &redirect, [2, 0, 1]).await;
    let (_, pair) = c.exchange(1, &client, &code, &redirect, &verifier).await;
    let refresh = pair["refresh_token"].as_str().unwrap_or(refresh).to_owned();
    let form = [("grant_type", "refresh_token"), ("refresh_token", &refresh)];
    let (status, first) = c.token(2, &client, &form).await;
    assert_eq!(status, 200, "{first}");
    let (status, again) = c.token(0, &client, &form).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(first["access_token"], again["access_token"]);
    assert_eq!(first["refresh_token"], again["refresh_token"]);

    // Revoked on one instance: refused by the others at their next request.
    let new_access = first["access_token"].as_str().unwrap();
    let res = c
        .api
        .post(c.url(0, "/oauth/revoke"))
        .form(&[
            ("token", first["refresh_token"].as_str().unwrap()),
            ("client_id", client["client_id"].as_str().unwrap()),
            ("client_secret", client["client_secret"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    for i in [1, 2] {
        assert!(
            !c.active(i, new_access).await,
            "instance {i} still takes a revoked token"
        );
    }
    // A client disabled on one instance is refused by another at once.
    let res = c
        .api
        .post(c.url(
            1,
            &format!(
                "/admin/v1/clients/{}/disable",
                client["client_id"].as_str().unwrap()
            ),
        ))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let (status, v) = c
        .exchange(2, &client, "mcp_code_whatever", &redirect, &verifier)
        .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (401, Some("invalid_client")),
        "{v}"
    );
}

#[actix_web::test]
async fn a_code_redeemed_on_three_instances_at_once_and_thirty_refreshes_of_one_token_happen_once()
{
    let google = fake_google::start();
    let Some(c) = Cluster::start(&google, &[]).await else {
        return;
    };
    let redirect = google.client_callback();
    let client = c.register(0, &redirect).await;
    for round in 0..3 {
        let (code, verifier) = c.sign_in(&client, &redirect, [round % 3, 1, 2]).await;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect.as_str()),
            ("code_verifier", verifier.as_str()),
        ];
        let answers =
            futures_util::future::join_all((0..3).map(|i| c.token(i, &client, &form))).await;
        let ok = answers.iter().filter(|(s, _)| *s == 200).count();
        assert_eq!(ok, 1, "round {round}: {answers:?}");
        assert!(
            answers.iter().all(|(s, _)| *s == 200 || *s == 400),
            "{answers:?}"
        );
    }

    let (code, verifier) = c.sign_in(&client, &redirect, [0, 1, 2]).await;
    let (_, pair) = c.exchange(0, &client, &code, &redirect, &verifier).await;
    let refresh = pair["refresh_token"].as_str().unwrap().to_owned();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
    ];
    let answers =
        futures_util::future::join_all((0..30).map(|n| c.token(n % 3, &client, &form))).await;
    for (status, v) in &answers {
        assert_eq!(*status, 200, "{v}");
        assert_eq!(v["access_token"], answers[0].1["access_token"]);
        assert_eq!(v["refresh_token"], answers[0].1["refresh_token"]);
    }
    let new_access = answers[0].1["access_token"].as_str().unwrap();
    for i in 0..3 {
        assert!(c.active(i, new_access).await);
    }
}

#[actix_web::test]
async fn three_hundred_registrations_over_three_instances_against_a_cap_of_fifty_store_fifty() {
    let google = fake_google::start();
    let Some(c) = Cluster::start(&google, &[("MAX_PROXY_CLIENTS", "50")]).await else {
        return;
    };
    let body = json!({
        "client_name": "cap test",
        "redirect_uris": [google.client_callback()],
    });
    let statuses = futures_util::future::join_all((0..300).map(|n| {
        let req = c.api.post(c.url(n % 3, "/oauth/register")).json(&body);
        async move { req.send().await.unwrap().status().as_u16() }
    }))
    .await;
    let created = statuses.iter().filter(|s| **s == 201).count();
    let refused = statuses.iter().filter(|s| **s == 503).count();
    assert_eq!((created, refused), (50, 250), "{statuses:?}");
    let stats: Value = c
        .api
        .get(c.url(2, "/admin/v1/clients"))
        .bearer_auth(ADMIN)
        .query(&[("limit", "500")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["clients"].as_array().unwrap().len(), 50);
}

#[actix_web::test]
async fn one_address_registering_on_three_instances_holds_its_cap_of_unused_registrations_once() {
    let google = fake_google::start();
    let Some(c) = Cluster::start(
        &google,
        &[
            // The flood guard is on with the rate limits; these stay out of
            // the way so that the guard alone decides.
            ("RATE_LIMIT_ENABLED", "true"),
            ("MAX_REGISTRATIONS_PER_MINUTE", "10000"),
            (
                "DRAWBRIDGE_RATE_LIMIT__GLOBAL_REGISTRATIONS_PER_MINUTE",
                "10000",
            ),
            ("DRAWBRIDGE_CLIENTS__MAX_UNUSED_PER_ADDRESS", "5"),
        ],
    )
    .await
    else {
        return;
    };
    let body = json!({
        "client_name": "flood test",
        "redirect_uris": [google.client_callback()],
    });
    let statuses = futures_util::future::join_all((0..30).map(|n| {
        let req = c.api.post(c.url(n % 3, "/oauth/register")).json(&body);
        async move { req.send().await.unwrap().status().as_u16() }
    }))
    .await;
    let created = statuses.iter().filter(|s| **s == 201).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(
        (created, refused),
        (5, 25),
        "one address over three instances: {statuses:?}"
    );
}

#[actix_web::test]
async fn the_janitor_runs_on_one_instance_and_another_takes_over_when_it_is_killed() {
    let google = fake_google::start();
    let Some(mut c) = Cluster::start(&google, &[("DRAWBRIDGE_STORAGE__LEASE_SECONDS", "3")]).await
    else {
        return;
    };
    // Exactly one instance leads, and it alone has purged.
    let deadline = Instant::now() + Duration::from_secs(15);
    let leader = loop {
        let mut leaders = Vec::new();
        for i in 0..3 {
            if c.metric(i, "drawbridge_janitor_leader").await == Some(1.0) {
                leaders.push(i);
            }
        }
        if leaders.len() == 1
            && c.metric(leaders[0], "drawbridge_janitor_runs_total").await >= Some(1.0)
        {
            break leaders[0];
        }
        assert!(leaders.len() <= 1, "two leaders at once: {leaders:?}");
        assert!(
            Instant::now() < deadline,
            "no instance took the janitor's lease"
        );
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    };
    for i in (0..3).filter(|i| *i != leader) {
        assert_eq!(
            c.metric(i, "drawbridge_janitor_runs_total").await,
            Some(0.0)
        );
    }
    let killed_at = Instant::now();
    c.kill9(leader);
    let deadline = Instant::now() + Duration::from_secs(15);
    let successor = loop {
        let mut found = None;
        for i in (0..3).filter(|i| *i != leader) {
            if c.metric(i, "drawbridge_janitor_leader").await == Some(1.0)
                && c.metric(i, "drawbridge_janitor_runs_total").await >= Some(1.0)
            {
                found = Some(i);
            }
        }
        if let Some(i) = found {
            break i;
        }
        assert!(Instant::now() < deadline, "nobody took over the janitor");
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    };
    let took = killed_at.elapsed();
    assert!(
        took <= Duration::from_secs(6),
        "took over after {took:?} (lease 3 s)"
    );
    eprintln!("janitor: instance {leader} killed, instance {successor} purged after {took:?}");
    let other = (0..3).find(|i| *i != leader && *i != successor).unwrap();
    assert_eq!(
        c.metric(other, "drawbridge_janitor_leader").await,
        Some(0.0)
    );
}

#[actix_web::test]
async fn a_key_rotated_on_one_instance_reaches_the_others_through_the_shared_key_file() {
    let google = fake_google::start();
    // The key in a file all three read (the same path: one file shared,
    // as on a shared volume or copied by configuration management).
    let Some(c) = Cluster::start(
        &google,
        &[
            ("AUTH_ENCRYPTION_KEY", ""),
            ("AUTH_ENCRYPTION_KEY_FILE", "shared.key"),
        ],
    )
    .await
    else {
        return;
    };
    let redirect = google.client_callback();
    let client = c.register(0, &redirect).await;
    let (code, verifier) = c.sign_in(&client, &redirect, [0, 1, 2]).await;
    let (_, pair) = c.exchange(0, &client, &code, &redirect, &verifier).await;
    let access = pair["access_token"].as_str().unwrap().to_owned();
    // Introspection names the user: the instance opened the sealed record.
    let username = |i: usize| {
        let (c, access) = (&c, access.clone());
        async move {
            let res = c
                .api
                .post(c.url(i, "/oauth/introspect"))
                .bearer_auth(INTROSPECTION)
                .form(&[("token", access.as_str())])
                .send()
                .await
                .unwrap();
            let v: Value = res.json().await.unwrap_or_default();
            v["username"].as_str().map(str::to_owned)
        }
    };
    for i in 0..3 {
        assert_eq!(username(i).await.as_deref(), Some(fake_google::EMAIL));
    }
    let rotate = || async {
        let res = c
            .api
            .post(c.url(0, "/admin/v1/keys/rotate"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        res.json::<Value>().await.unwrap()
    };
    let first = rotate().await;
    assert!(first["resealed"].as_u64() >= Some(1), "{first}");
    assert_eq!(
        first["retired_keys"],
        json!([]),
        "old keys kept for the others: {first}"
    );
    // The others take the new key from the file within their reload time.
    let started = Instant::now();
    for i in [1, 2] {
        while username(i).await.as_deref() != Some(fake_google::EMAIL) {
            assert!(
                started.elapsed() < Duration::from_secs(25),
                "instance {i} never read the rotated key file"
            );
            actix_web::rt::time::sleep(Duration::from_millis(250)).await;
        }
    }
    eprintln!(
        "key rotation: every instance reads re-sealed records after {:?}",
        started.elapsed()
    );
    // Once every instance has reloaded (10 s), the second run retires the old key.
    actix_web::rt::time::sleep(Duration::from_secs(11)).await;
    let second = rotate().await;
    assert_eq!(
        second["retired_keys"].as_array().map(Vec::len),
        Some(1),
        "{second}"
    );
    for i in 0..3 {
        assert_eq!(
            username(i).await.as_deref(),
            Some(fake_google::EMAIL),
            "instance {i}"
        );
    }
}
