//! PostgreSQL for the tests: a fresh database on the shared test server
//! `scripts/test.sh` starts (`DRAWBRIDGE_TEST_DATABASE_URL`), or a private
//! server for a test that stops and restarts PostgreSQL itself (the shared
//! one serves the tests running beside it). Without PostgreSQL these tests
//! skip with one line on a developer's machine, and fail under `CI=true`.

use std::process::Command;

/// Whether a missing PostgreSQL is a failure (CI) rather than a skip.
fn required() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// The shared test server's URL; `None` (skipped, saying `what` needs it)
/// outside CI when it is missing.
pub fn shared_server(what: &str) -> Option<String> {
    match std::env::var("DRAWBRIDGE_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if required() => {
            panic!("DRAWBRIDGE_TEST_DATABASE_URL is not set: under CI=true {what} are required (scripts/test.sh starts PostgreSQL)")
        }
        _ => {
            eprintln!("skipped: {what} need PostgreSQL (DRAWBRIDGE_TEST_DATABASE_URL; scripts/test.sh starts one)");
            None
        }
    }
}

/// A new, empty database on `server`; its URL.
pub async fn fresh_database(server: &str) -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap();
    let name: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let name = format!("drawbridge_test_{name}");
    let (client, connection) = tokio_postgres::connect(server, tokio_postgres::NoTls)
        .await
        .expect("connect to the test server");
    let connection = actix_web::rt::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("CREATE DATABASE");
    drop(client);
    let _ = connection.await;
    let mut url = url::Url::parse(server).unwrap();
    url.set_path(&name);
    url.to_string()
}

/// A PostgreSQL server of the test's own (`scripts/dev/postgres.sh
/// private-*`); removed when dropped.
pub struct PrivateServer {
    pub url: String,
    dir: String,
}

fn script(args: &[&str]) -> std::process::Output {
    Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/dev/postgres.sh"
        ))
        .args(args)
        .output()
        .expect("bash runs")
}

impl PrivateServer {
    /// Starts one; `None` (skipped, saying `what` needs it) outside CI
    /// when PostgreSQL cannot be started here.
    pub async fn start(what: &str) -> Option<Self> {
        let out = actix_web::rt::task::spawn_blocking(|| script(&["private-start"]))
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if let (true, Some((url, dir))) = (out.status.success(), stdout.trim().split_once(' ')) {
            return Some(Self {
                url: url.to_owned(),
                dir: dir.to_owned(),
            });
        }
        assert!(
            !required(),
            "under CI=true {what} are required, but PostgreSQL did not start: {stderr}"
        );
        eprintln!("skipped: {what} need a PostgreSQL server of their own, which did not start here (scripts/dev/postgres.sh private-start): {}", stderr.trim());
        None
    }

    async fn run(&self, command: &'static str) {
        let dir = self.dir.clone();
        let out = actix_web::rt::task::spawn_blocking(move || script(&[command, &dir]))
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "postgres.sh {command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server at once, as a crash would.
    pub async fn stop(&self) {
        self.run("private-stop").await;
    }

    /// Starts it again, on the same port and data.
    pub async fn resume(&self) {
        self.run("private-resume").await;
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let _ = script(&["private-remove", &self.dir]);
    }
}
