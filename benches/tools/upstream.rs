//! The benchmark's stand-ins, on one port: the "hello" baseline (a bare
//! actix-web handler answering 200), an instant OAuth provider (authorize,
//! token, userinfo) and an instant MCP server. Used by scripts/dev/bench.sh.
//!
//! Usage: bench-upstream <port>

use actix_web::{web, App, HttpResponse, HttpServer};
use serde::Deserialize;

async fn hello() -> HttpResponse {
    HttpResponse::Ok().body("hello")
}

#[derive(Deserialize)]
struct Authorize {
    redirect_uri: String,
    state: String,
}

/// The user consents at once: straight back to the caller with a code.
async fn authorize(q: web::Query<Authorize>) -> HttpResponse {
    let mut url = match url::Url::parse(&q.redirect_uri) {
        Ok(u) => u,
        Err(_) => return HttpResponse::BadRequest().finish(),
    };
    url.query_pairs_mut()
        .append_pair("code", &format!("bench-code-{}", std::process::id()))
        .append_pair("state", &q.state);
    HttpResponse::Found()
        .insert_header(("Location", url.to_string()))
        .finish()
}

async fn token() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "access_token": "ya29.bench-access-token",
        "refresh_token": "1//bench-refresh-token",
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": "openid email https://www.googleapis.com/auth/userinfo.email"
    }))
}

async fn userinfo() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "sub": "100000000000000000001",
        "email": "bench@example.com",
        "email_verified": true
    }))
}

/// A small MCP answer, whatever was asked.
async fn mcp(body: web::Bytes) -> HttpResponse {
    let id = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("id").cloned())
        .unwrap_or(serde_json::Value::Null);
    HttpResponse::Ok()
        .json(serde_json::json!({"jsonrpc": "2.0", "id": id, "result": {"tools": []}}))
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(9100);
    HttpServer::new(|| {
        App::new()
            .route("/", web::get().to(hello))
            .route("/authorize", web::get().to(authorize))
            .route("/token", web::post().to(token))
            .route("/userinfo", web::get().to(userinfo))
            .route("/mcp", web::post().to(mcp))
    })
    .bind(("127.0.0.1", port))?
    .run()
    .await
}
