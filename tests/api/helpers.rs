use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, LazyLock, Mutex};

use drawbridge::clock::Clock;
use drawbridge::configuration::{load_from, Config};
use drawbridge::startup::Application;
use drawbridge::telemetry::{get_subscriber, init_subscriber};
use serde_json::{json, Value};

/// Everything the app logs during the tests (all tests share the process).
pub static LOGS: LazyLock<Arc<Mutex<Vec<u8>>>> = LazyLock::new(|| {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(suite_file("test-logs.jsonl"))
        .ok()
        .map(|f| Arc::new(Mutex::new(f)));
    let sink = CaptureSink {
        buffer: buffer.clone(),
        echo: std::env::var("TEST_LOG").is_ok(),
        file,
    };
    init_subscriber(get_subscriber(
        "test",
        "info,drawbridge=trace,audit=trace",
        sink,
    ));
    buffer
});

#[derive(Clone)]
struct CaptureSink {
    buffer: Arc<Mutex<Vec<u8>>>,
    echo: bool,
    /// Every line of the whole suite, for the secret scan in scripts/test.sh.
    file: Option<Arc<Mutex<std::fs::File>>>,
}

/// A file shared by the whole test run (scripts/test.sh empties and scans them).
pub fn suite_file(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}

/// Notes a secret the tests saw, so the suite-wide log scan can look for it.
pub fn remember_secret(secret: &str) {
    if secret.len() < 12 {
        return;
    }
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(suite_file("secrets.txt"))
    {
        let _ = writeln!(f, "{secret}");
    }
}

impl Write for CaptureSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buffer.lock().unwrap().extend_from_slice(data);
        if let Some(f) = &self.file {
            let _ = f.lock().unwrap().write_all(data);
        }
        if self.echo {
            std::io::stdout().write_all(data)?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CaptureSink {
    type Writer = CaptureSink;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

pub const T0: i64 = 1_750_000_000;
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub clock: Clock,
    pub config: std::sync::Arc<Config>,
    pub janitor: actix::Addr<drawbridge::actors::janitor::Janitor>,
    pub dir: tempfile::TempDir,
}

/// Builds a configuration as the binary would, from variables only.
pub fn config_with(dir: &std::path::Path, vars: &[(&str, &str)]) -> Config {
    let mut all: BTreeMap<String, String> = BTreeMap::from([
        ("MCP_PORT".into(), "0".into()),
        (
            "CREDENTIALS_DIR".into(),
            dir.join("credentials").display().to_string(),
        ),
        ("DRAWBRIDGE_SERVER__WORKERS".into(), "2".into()),
        (
            "AUTH_ENCRYPTION_KEY_FILE".into(),
            dir.join("encryption.key").display().to_string(),
        ),
        ("DRAWBRIDGE_ADMIN_TOKEN".into(), ADMIN_TOKEN.into()),
    ]);
    for (k, v) in vars {
        all.insert(k.to_string(), v.to_string());
    }
    if let Some(url) = postgres_backend(dir, &all) {
        all.insert("DRAWBRIDGE_STORAGE__BACKEND".into(), "postgres".into());
        all.insert("DATABASE_URL".into(), url);
    }
    load_from(None, &all)
        .expect("test configuration is valid")
        .0
}

/// The backend the suite runs on: `DRAWBRIDGE_TEST_BACKEND=postgres`
/// (scripts/test.sh runs the login-flow, admin and registration tests
/// once more that way) puts each app whose mode keeps records on disk in a
/// database of its own on the test server, one per data directory, so an
/// app restarted on the same directory finds its data again.
fn postgres_backend(dir: &std::path::Path, vars: &BTreeMap<String, String>) -> Option<String> {
    if std::env::var("DRAWBRIDGE_TEST_BACKEND").as_deref() != Ok("postgres") {
        return None;
    }
    let mode = vars.get("CREDENTIAL_STORAGE_MODE").map(String::as_str);
    if matches!(mode, Some("MEMORY_ONLY" | "MEMORY_WITH_BACKUP"))
        || vars.contains_key("DRAWBRIDGE_STORAGE__BACKEND")
    {
        return None;
    }
    let server = std::env::var("DRAWBRIDGE_TEST_DATABASE_URL")
        .expect("DRAWBRIDGE_TEST_BACKEND=postgres needs DRAWBRIDGE_TEST_DATABASE_URL");
    let remembered = dir.join("test-database-url");
    if let Ok(url) = std::fs::read_to_string(&remembered) {
        return Some(url);
    }
    let url = on_own_runtime(async move { crate::postgres_server::fresh_database(&server).await });
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(&remembered, &url).unwrap();
    Some(url)
}

/// Every row of the app's database when the suite runs on PostgreSQL (the
/// key, then the value, as bytes, named by tree); empty on sled.
pub fn database_rows(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let Ok(url) = std::fs::read_to_string(dir.join("test-database-url")) else {
        return Vec::new();
    };
    on_own_runtime(async move {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("connect to the app's database");
        actix_web::rt::spawn(connection);
        let rows = client
            .query("SELECT tree, key, value FROM drawbridge_kv", &[])
            .await
            .unwrap();
        rows.iter()
            .flat_map(|r| {
                let tree: String = r.get(0);
                let key: Vec<u8> = r.get(1);
                let value: Vec<u8> = r.get(2);
                [
                    (format!("{tree} key"), key),
                    (format!("{tree} value"), value),
                ]
            })
            .collect()
    })
}

/// Runs `work` to its end on a runtime of its own, on a thread of its own:
/// the callers (configuration, checks) run inside a test's runtime, which
/// cannot be blocked on from within.
fn on_own_runtime<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    std::thread::spawn(move || actix_web::rt::System::new().block_on(work))
        .join()
        .unwrap()
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts the app on port 0 with a fresh on-disk store and a manual clock.
pub async fn spawn_app_with(vars: &[(&str, &str)]) -> TestApp {
    spawn_app_in(tempfile::tempdir().unwrap(), vars).await
}

/// Starts the app on data already in `dir` (see [`config_with`]).
pub async fn spawn_app_in(dir: tempfile::TempDir, vars: &[(&str, &str)]) -> TestApp {
    start_stoppable(dir, vars).await.0
}

/// An instance that can be stopped the way SIGTERM stops the binary:
/// [`ServerHandle::stop`] ends `run_until_stopped`, which flushes storage.
pub struct Stoppable {
    handle: actix_web::dev::ServerHandle,
    finished: tokio::sync::oneshot::Receiver<()>,
}

impl Stoppable {
    pub async fn stop(self) {
        self.handle.stop(true).await;
        self.finished
            .await
            .expect("run_until_stopped finished (storage flushed)");
    }
}

/// Like [`spawn_app_in`], keeping what stops the instance.
pub async fn start_stoppable(
    dir: tempfile::TempDir,
    vars: &[(&str, &str)],
) -> (TestApp, Stoppable) {
    LazyLock::force(&LOGS);
    let clock = Clock::manual(T0);
    let app = Application::build(config_with(dir.path(), vars), clock.clone())
        .await
        .expect("app builds");
    let (port, config, janitor, handle) = (app.port(), app.config(), app.janitor(), app.handle());
    let (done, finished) = tokio::sync::oneshot::channel();
    actix_web::rt::spawn(async move {
        let _ = app.run_until_stopped().await;
        let _ = done.send(());
    });
    let test_app = TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(CLIENT_IDLE)
            .build()
            .unwrap(),
        clock,
        config,
        janitor,
        dir,
    };
    (test_app, Stoppable { handle, finished })
}

/// How long the tests' HTTP clients keep an idle connection: less than
/// the server's keep-alive (actix-web's 5 s), so a client never sends on a
/// connection the server is closing at that moment (a loaded machine made
/// that race show up as `IncompleteMessage`).
pub const CLIENT_IDLE: std::time::Duration = std::time::Duration::from_secs(2);

/// A free TCP port on 127.0.0.1 (for listeners a test configures by port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn sample_registration() -> Value {
    json!({
        "client_name": "MCP Inspector",
        "redirect_uris": ["http://localhost:6274/oauth/callback", "http://127.0.0.1:6274/oauth/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_post"
    })
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A GET of the admin API with the operator's token.
    pub async fn get_json_as_admin(&self, path: &str) -> (u16, Value) {
        let res = self
            .client
            .get(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let res = self.client.get(self.url(path)).send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn register(&self, body: &Value) -> (u16, Value) {
        let res = self
            .client
            .post(self.url("/oauth/register"))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Registers the sample client and returns the response body.
    pub async fn register_ok(&self) -> Value {
        let (status, body) = self.register(&sample_registration()).await;
        assert_eq!(status, 201, "{body}");
        body
    }

    pub async fn manage(
        &self,
        method: reqwest::Method,
        client_id: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, self.url(&format!("/oauth/register/{client_id}")));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Number of clients the server reports holding.
    pub async fn client_count(&self) -> u64 {
        let (_, body) = self.get_json("/health/oauth").await;
        body["proxy_clients"]
            .as_u64()
            .expect("proxy_clients is reported")
    }
}
