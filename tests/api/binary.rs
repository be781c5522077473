//! The `drawbridge` binary as an operator runs it: start-up errors, the
//! effective configuration, and a registration surviving SIGTERM and restart.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drawbridge::actors::handle::Reads;
use drawbridge::actors::registry::{AuthenticateClient, ExpiryPolicy, RegistryCore};
use drawbridge::clock::Clock;
use drawbridge::domain::{AuthMethod, SecretToken};
use drawbridge::storage::{Owned, SledStore};
use serde_json::Value;

/// The binary under test: `DRAWBRIDGE_TEST_BIN` (scripts/test.sh points it
/// at the release build) or the debug build cargo made for this test run.
pub fn binary() -> std::path::PathBuf {
    std::env::var_os("DRAWBRIDGE_TEST_BIN")
        .map(|p| {
            std::fs::canonicalize(&p).unwrap_or_else(|e| panic!("DRAWBRIDGE_TEST_BIN {p:?}: {e}"))
        })
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_drawbridge").into())
}

pub fn drawbridge(dir: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(binary());
    cmd.env_clear().current_dir(dir).envs(env.iter().copied());
    cmd
}

pub struct Running {
    pub child: Child,
    pub port: u16,
    pub output: Arc<Mutex<String>>,
}

/// Starts the server on a free port and waits until it says it is ready.
pub fn start(dir: &Path, env: &[(&str, &str)]) -> Running {
    let mut cmd = drawbridge(dir, env);
    if !env.iter().any(|(k, _)| *k == "MCP_PORT") {
        cmd.env("MCP_PORT", "0");
    }
    spawn_and_wait(cmd)
}

fn spawn_and_wait(mut cmd: Command) -> Running {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().unwrap();
    let output = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = output.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if v["msg"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("listening on "))
                {
                    let _ = tx.send(v["port"].as_u64().unwrap_or(0) as u16);
                }
            }
            sink.lock().unwrap().push_str(&line);
            sink.lock().unwrap().push('\n');
        }
    });
    let port = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("server reports it is listening");
    Running {
        child,
        port,
        output,
    }
}

pub fn terminate(mut running: Running) -> (i32, String) {
    let pid = running.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = running.child.try_wait().unwrap() {
            std::thread::sleep(Duration::from_millis(100));
            let out = running.output.lock().unwrap().clone();
            return (status.code().unwrap_or(-1), out);
        }
        assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[actix_web::test]
async fn a_registration_survives_sigterm_and_restart_and_still_authenticates() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("CREDENTIALS_DIR", "creds")];
    let server = start(dir.path(), &env);
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{}", server.port);
    let reg: Value = http
        .post(format!("{base}/oauth/register"))
        .json(&crate::helpers::sample_registration())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = reg["client_id"].as_str().unwrap().to_owned();
    let secret = reg["client_secret"].as_str().unwrap().to_owned();
    let token = reg["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, logs) = terminate(server);
    assert_eq!(code, 0, "graceful stop exits 0:\n{logs}");
    assert!(logs.contains("storage flushed"), "{logs}");
    assert!(!logs.contains(&secret) && !logs.contains(&token));

    let server = start(dir.path(), &env);
    let res = http
        .get(format!(
            "http://127.0.0.1:{}/oauth/register/{id}",
            server.port
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let (code, _) = terminate(server);
    assert_eq!(code, 0);

    // With the server gone, the stored client still authenticates with its secret.
    let store = Arc::new(SledStore::open(&dir.path().join("creds").join("drawbridge.db")).unwrap());
    let policy = ExpiryPolicy {
        unused_seconds: 3600,
        idle_seconds: 86400,
    };
    let core = RegistryCore::new(Owned::new(store), policy, 100, true).reader();
    let auth = |secret: &str| AuthenticateClient {
        client_id: drawbridge::domain::ClientId::stored(id.clone()),
        method: AuthMethod::ClientSecretPost,
        secret: Some(SecretToken::presented(secret)),
        now: Clock::System.now(),
    };
    assert!(core.read(auth(&secret)).is_ok());
    assert!(core.read(auth("mcp_cs_wrong")).is_err());
}

#[test]
fn configuration_errors_exit_with_status_2_and_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.toml"), "[server]\nprot = 8002\n").unwrap();
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec!["--config", "bad.toml", "check-config"],
            vec![],
            "server.prot",
        ),
        (
            vec!["check-config"],
            vec![("MCP_PORT", "99999")],
            "server.port",
        ),
        (
            vec!["check-config"],
            vec![("BASE_URL", "localhost:8002")],
            "server.base_url",
        ),
        (
            vec!["check-config"],
            vec![("GOOGLE_OAUTH_CREDENTIALS_FILE", "missing.json")],
            "google.credentials_file",
        ),
        (
            vec!["serve"],
            vec![("CREDENTIAL_STORAGE_MODE", "S3")],
            "storage.mode",
        ),
        (vec!["--config", "absent.toml"], vec![], "--config"),
    ];
    for (args, env, key) in cases {
        let out = drawbridge(dir.path(), &env).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert!(stderr.contains(key), "{stderr} should name {key}");
        assert_eq!(stderr.trim().lines().count(), 1, "one message: {stderr}");
    }
}

#[test]
fn check_config_prints_the_effective_configuration_with_secrets_masked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "GOOGLE_CLIENT_SECRET=dotenv-secret-value\nMCP_PORT=9123\n",
    )
    .unwrap();
    let out = drawbridge(
        dir.path(),
        &[("GOOGLE_CLIENT_ID", "abc.apps.googleusercontent.com")],
    )
    .arg("check-config")
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("port = 9123"), ".env is read: {stdout}");
    assert!(stdout.contains("client_id = \"abc.apps.googleusercontent.com\""));
    assert!(stdout.contains("client_secret = \"***\""));
    assert!(!stdout.contains("dotenv-secret-value"));
    assert!(stdout.contains("set by $MCP_PORT"));
}

#[actix_web::test]
async fn audit_records_also_go_to_their_own_file_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &[
            ("CREDENTIALS_DIR", "creds"),
            ("DRAWBRIDGE_AUDIT__LOG_PATH", "audit.jsonl"),
        ],
    );
    let reg: Value = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/oauth/register", server.port))
        .json(&crate::helpers::sample_registration())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    terminate(server);
    let text = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        records.iter().all(|r| r["target"] == "audit"),
        "only audit records in the file"
    );
    assert!(records
        .iter()
        .any(|r| r["event_type"] == "client_registered" && r["client_id"] == reg["client_id"]));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("audit.jsonl"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
}

#[test]
fn help_shows_each_subcommand_with_its_own_description() {
    let dir = tempfile::tempdir().unwrap();
    let out = drawbridge(dir.path(), &[]).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    let line = |command: &str| {
        help.lines()
            .find(|l| l.trim_start().starts_with(&format!("{command} ")))
            .unwrap_or_else(|| panic!("{command} is not listed: {help}"))
            .to_owned()
    };
    assert!(line("serve").contains("Run the service"), "{help}");
    assert!(
        line("check-config").contains("effective configuration"),
        "{help}"
    );
    assert!(
        line("rotate-key").contains("Rotate the encryption key"),
        "{help}"
    );
    let openapi = line("openapi");
    assert!(
        openapi.contains("OpenAPI") && !openapi.contains("Copy"),
        "{openapi}"
    );
    assert!(
        line("migrate-storage").contains("Copy every record"),
        "{help}"
    );
}

/// Starts the binary with its soft open-files limit lowered to `soft`, as
/// systemd's default of 1 024 would, but lower so the test stays small.
fn start_with_soft_open_files_limit(dir: &Path, env: &[(&str, &str)], soft: u64) -> Running {
    use std::os::unix::process::CommandExt;
    let mut cmd = drawbridge(dir, env);
    cmd.env("MCP_PORT", "0");
    // SAFETY: only setrlimit (async-signal-safe) runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
            limit.rlim_cur = soft.min(limit.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            Ok(())
        });
    }
    spawn_and_wait(cmd)
}

#[actix_web::test]
async fn a_low_soft_open_files_limit_is_raised_so_hundreds_of_connections_are_served() {
    // This process holds the client ends: give it room too.
    let ours = drawbridge::open_files::raise_to_hard_limit().unwrap();
    if ours.after < 2048 {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the hard open-files limit is {} (< 2048) under CI",
            ours.after
        );
        eprintln!(
            "skipped: the hard open-files limit here is {} (< 2048)",
            ours.after
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_soft_open_files_limit(
        dir.path(),
        &[
            ("CREDENTIALS_DIR", "creds"),
            ("DRAWBRIDGE_SERVER__MAX_CONNECTIONS_PER_ADDRESS", "0"),
        ],
        256,
    );
    let raised = server
        .output
        .lock()
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["msg"] == "open-files limit raised to the hard limit")
        .expect("the start-up log says the limit was raised");
    assert_eq!(raised["was"], 256, "{raised}");
    assert_eq!(raised["open_files_limit"], ours.after, "{raised}");
    // 400 idle connections need 800 descriptors: far past the 256 it was
    // started with.
    let mut idle = Vec::new();
    for _ in 0..400 {
        idle.push(
            tokio::net::TcpStream::connect(("127.0.0.1", server.port))
                .await
                .unwrap(),
        );
    }
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let res = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/health/live", server.port))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("the server still accepts connections");
    assert_eq!(res.status(), 200);
    drop(idle);
    terminate(server);
}
