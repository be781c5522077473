//! Disk faults on real filesystems: the data directory is a small tmpfs that
//! fills up, or an ext4 image that the kernel turns read-only after an error
//! (`errors=remount-ro`, triggered through ext4's `trigger_fs_error`). Writes
//! must fail with 503 and a clear log line, reads must keep working, and
//! after a full disk the service must recover by itself once space returns.
//! (A read-only ext4 stays read-only until it is unmounted and checked, so
//! there the recovery is a restart.) Mounting needs root: CI and this
//! project's machines run the suite as root.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::captured_logs;
use crate::login_flow::{setup, Client, Flow, INTROSPECTION_SECRET};

struct Tmpfs {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(megabytes: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        std::fs::create_dir(&path).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={megabytes}m,mode=700"),
                "tmpfs",
            ])
            .arg(&path)
            .output()
            .expect("mount(8) runs");
        assert!(
            out.status.success(),
            "the disk-fault test mounts a tmpfs and needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { path, _dir: dir }
    }

    /// Fills the filesystem until it refuses another byte.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.path.join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.write_all(&[0u8; 1]);
        filler
    }
}

/// An ext4 image on a loop device (autocleared on unmount).
struct Ext4 {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Ext4 {
    fn mount(megabytes: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("disk.img");
        let path = dir.path().join("data");
        std::fs::create_dir(&path).unwrap();
        std::fs::File::create(&image)
            .unwrap()
            .set_len(u64::from(megabytes) << 20)
            .unwrap();
        let run = |cmd: &mut Command| {
            let out = cmd.output().expect("runs");
            assert!(
                out.status.success(),
                "{cmd:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image));
        run(Command::new("mount")
            .args(["-o", "loop,errors=remount-ro"])
            .arg(&image)
            .arg(&path));
        Self { path, _dir: dir }
    }

    /// Makes the kernel see a filesystem error: ext4 turns itself read-only.
    fn fail(&self) {
        let out = Command::new("findmnt")
            .args(["-n", "-o", "SOURCE"])
            .arg(&self.path)
            .output()
            .unwrap();
        let device = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let name = device.rsplit('/').next().unwrap().to_owned();
        std::fs::write(
            format!("/sys/fs/ext4/{name}/trigger_fs_error"),
            "drawbridge test",
        )
        .expect("ext4 error injection");
        assert!(
            std::fs::write(self.path.join("probe"), b"x").is_err(),
            "read-only now"
        );
    }
}

impl Drop for Ext4 {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: the app still holds its files open until the process ends.
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn registration(flow: &Flow) -> Value {
    serde_json::json!({
        "client_name": "disk fault client",
        "redirect_uris": [flow.google.client_callback()],
    })
}

/// Registers until the server refuses with 503 (a few writes may still fit
/// in space the store had already claimed); returns the refusal.
async fn register_until_refused(flow: &Flow) -> (reqwest::header::HeaderMap, Value) {
    for _ in 0..500 {
        let res = flow
            .app
            .client
            .post(flow.app.url("/oauth/register"))
            .json(&registration(flow))
            .send()
            .await
            .unwrap();
        match res.status().as_u16() {
            201 => continue,
            503 => {
                let headers = res.headers().clone();
                return (headers, res.json().await.unwrap());
            }
            other => panic!("a full or read-only disk answered {other}, not 503"),
        }
    }
    panic!("500 registrations were accepted on a full disk");
}

async fn register_until_accepted(flow: &Flow) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = flow.app.register(&registration(flow)).await;
        if status == 201 {
            return body;
        }
        assert_eq!(status, 503, "{body}");
        assert!(
            Instant::now() < deadline,
            "registrations still refused 15 s after the disk recovered"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An app whose data directory is `dir`, with a registered client and a
/// signed-in one holding a token pair.
struct Served {
    flow: Flow,
    client: Value,
    signed: Client,
    access: String,
    refresh: String,
}

async fn serve_from(dir: &std::path::Path) -> Served {
    let dir = dir.display().to_string();
    let flow = setup(&[
        ("CREDENTIALS_DIR", dir.as_str()),
        (
            "DRAWBRIDGE_OAUTH__INTROSPECTION_SECRET",
            INTROSPECTION_SECRET,
        ),
    ])
    .await;
    let (status, client) = flow.app.register(&registration(&flow)).await;
    assert_eq!(status, 201, "{client}");
    let signed = flow.register("client_secret_post").await;
    let login = flow.login(&signed).await;
    let (status, tokens) = flow.exchange(&signed, &login).await;
    assert_eq!(status, 200, "{tokens}");
    Served {
        access: tokens["access_token"].as_str().unwrap().to_owned(),
        refresh: tokens["refresh_token"].as_str().unwrap().to_owned(),
        flow,
        client,
        signed,
    }
}

/// The client reads back through RFC 7592 with its registration token.
async fn reads_back(flow: &Flow, client: &Value) -> bool {
    let (status, _) = flow
        .app
        .manage(
            reqwest::Method::GET,
            client["client_id"].as_str().unwrap(),
            client["registration_access_token"].as_str(),
            None,
        )
        .await;
    status == 200
}

async fn reads_still_work(flow: &Flow, client: &Value, access_token: &str) {
    assert!(
        reads_back(flow, client).await,
        "reading a client during a disk fault"
    );
    let v = flow.introspect(access_token).await;
    assert_eq!(v["active"], true, "introspection during a disk fault: {v}");
    let (status, _) = flow.app.get_json("/health/live").await;
    assert_eq!(status, 200);
}

fn failed_flushes() -> f64 {
    drawbridge::metrics::METRICS
        .store_flushes
        .with_label_values(&["failed"])
        .get() as f64
}

fn refused_as_unavailable(headers: &reqwest::header::HeaderMap, body: &Value) {
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    assert!(headers.contains_key("retry-after"), "{headers:?}");
}

/// Whether this run may mount filesystems: root, or else (on a developer's
/// machine) one clear line and the test is skipped. Under `CI=true` the
/// test is required and fails without root.
fn can_mount(test: &str) -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root && std::env::var("CI").as_deref() != Ok("true") {
        eprintln!("skipped: {test} mounts filesystems and needs root (required under CI=true)");
        return false;
    }
    true
}

#[actix_web::test]
async fn a_full_disk_refuses_writes_with_503_keeps_reads_and_recovers_when_space_returns() {
    if !can_mount("the full-disk test") {
        return;
    }
    let disk = Tmpfs::mount(16);
    let Served {
        flow,
        client,
        signed,
        access,
        refresh,
    } = serve_from(&disk.path).await;

    // 1. The disk fills up.
    let failed_before = failed_flushes();
    let filler = disk.fill();
    let (headers, body) = register_until_refused(&flow).await;
    refused_as_unavailable(&headers, &body);
    let (status, body) = flow.refresh(&signed, &refresh).await;
    assert_eq!(status, 503, "a refresh on a full disk: {body}");
    reads_still_work(&flow, &client, &access).await;
    assert!(
        failed_flushes() > failed_before,
        "the metric counts failed flushes"
    );
    assert!(
        captured_logs().contains("storage flush failed"),
        "a clear log line names the storage failure"
    );

    // Space returns: writes work again without a restart, and the refresh
    // refused during the fault changed nothing (the token still works).
    std::fs::remove_file(filler).unwrap();
    let after_full = register_until_accepted(&flow).await;
    let (status, body) = flow.refresh(&signed, &refresh).await;
    assert_eq!(status, 200, "the refused refresh changed nothing: {body}");
    assert!(body["refresh_token"].is_string());

    // Everything acknowledged across the fault is still there.
    for c in [&client, &after_full] {
        assert!(reads_back(&flow, c).await);
    }
    assert!(captured_logs().contains("storage reopened after a disk error"));
}

#[actix_web::test]
async fn a_data_directory_turned_read_only_refuses_writes_with_503_and_keeps_serving_reads() {
    if !can_mount("the read-only-disk test") {
        return;
    }
    let disk = Ext4::mount(32);
    let Served {
        flow,
        client,
        signed,
        access,
        refresh,
    } = serve_from(&disk.path).await;

    disk.fail();
    let (headers, body) = register_until_refused(&flow).await;
    refused_as_unavailable(&headers, &body);
    let (status, body) = flow.refresh(&signed, &refresh).await;
    assert_eq!(status, 503, "a refresh on a read-only disk: {body}");
    reads_still_work(&flow, &client, &access).await;
    // Still serving reads a while later (recovery attempts keep failing
    // quietly rather than taking the store down).
    actix_web::rt::time::sleep(Duration::from_millis(700)).await;
    let (_, body) = flow.refresh(&signed, &refresh).await;
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    reads_still_work(&flow, &client, &access).await;
}
