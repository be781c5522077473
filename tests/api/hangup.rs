//! `systemctl reload` (the unit's `ExecReload`) sends SIGHUP. With HTTPS from
//! certificate files it reloads them (tests/api/https.rs); without, the
//! server must carry on serving, not die of the signal's default action.

use std::process::Command;
use std::time::Duration;

use crate::binary::{start, terminate};

#[actix_web::test]
async fn sighup_without_certificate_files_leaves_the_server_serving() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[("CREDENTIAL_STORAGE_MODE", "MEMORY_ONLY")]);
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let res = reqwest::get(format!("http://127.0.0.1:{}/health/live", server.port))
        .await
        .expect("the server still answers after SIGHUP");
    assert_eq!(res.status(), 200);
    let (code, logs) = terminate(server);
    assert_eq!(code, 0, "graceful stop after SIGHUP:\n{logs}");
    assert!(
        logs.contains("SIGHUP: no certificate files to reload; carrying on"),
        "{logs}"
    );
}
