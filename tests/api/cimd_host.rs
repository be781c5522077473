//! A local HTTPS host for Client ID Metadata Documents: answers each path
//! with the exact bytes a test gives it (so redirects, wrong types, huge or
//! slow bodies are what they say), and records every request head it saw.
//! Its certificate (`tests/fixtures/tls/`) is for `localhost`, `127.0.0.1`
//! and `::1`, signed by a test CA that [`ca_pem`] hands to Drawbridge.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

pub fn ca_pem() -> Vec<u8> {
    std::fs::read(fixture("ca.pem")).unwrap()
}

#[derive(Clone)]
pub enum Answer {
    /// These bytes, as the whole response.
    Raw(Vec<u8>),
    /// Wait, then these bytes.
    Slow(Duration, Vec<u8>),
}

/// A `200` answer with `content_type` and `body` (and Content-Length).
pub fn ok(content_type: &str, extra_headers: &str, body: &[u8]) -> Answer {
    let mut raw = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n{extra_headers}connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    Answer::Raw(raw)
}

#[derive(Clone)]
pub struct CimdHost {
    pub port: u16,
    routes: Arc<Mutex<HashMap<String, Answer>>>,
    /// Every request head received, in order.
    pub seen: Arc<Mutex<Vec<String>>>,
}

impl CimdHost {
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    pub fn answer(&self, path: &str, answer: Answer) {
        self.routes.lock().unwrap().insert(path.into(), answer);
    }

    pub fn requests_for(&self, path: &str) -> usize {
        let wanted = format!("GET {path} ");
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.starts_with(&wanted))
            .count()
    }
}

pub async fn start() -> CimdHost {
    // The certificate is loaded and served the way Drawbridge serves its own.
    let cert =
        drawbridge::tls::ReloadableCert::open(fixture("localhost.pem"), fixture("localhost.key"))
            .unwrap();
    let config = drawbridge::tls::server_config(Arc::new(cert));
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = CimdHost {
        port: listener.local_addr().unwrap().port(),
        routes: Arc::default(),
        seen: Arc::default(),
    };
    let served = host.clone();
    actix_web::rt::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let host = served.clone();
            actix_web::rt::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let path = head.split(' ').nth(1).unwrap_or("").to_owned();
                host.seen.lock().unwrap().push(head);
                let answer = host.routes.lock().unwrap().get(&path).cloned();
                let bytes = match answer {
                    Some(Answer::Raw(bytes)) => bytes,
                    Some(Answer::Slow(wait, bytes)) => {
                        actix_web::rt::time::sleep(wait).await;
                        bytes
                    }
                    None => {
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            .to_vec()
                    }
                };
                let _ = tls.write_all(&bytes).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    host
}
