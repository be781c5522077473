//! A stand-in for Google's OAuth endpoints, run inside the test process:
//! authorize (the user consents at once), token (code and refresh, with
//! PKCE), userinfo, revoke, and error modes. Also serves the MCP client's
//! redirect target, which echoes what it received.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::json;
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "fake-google-client.apps.googleusercontent.com";
pub const CLIENT_SECRET: &str = "fake-google-secret";
pub const CUSTOM_CLIENT_ID: &str = "custom-client.apps.googleusercontent.com";
pub const CUSTOM_CLIENT_SECRET: &str = "custom-google-secret";
pub const SUB: &str = "109876543210";
pub const EMAIL: &str = "ada@example.com";

/// How the token endpoint misbehaves, if at all.
#[derive(Clone, Debug, Default)]
pub enum Mode {
    #[default]
    Normal,
    /// Answer the token endpoint with this status and body.
    TokenError(u16, serde_json::Value),
    /// Sleep this long at the token endpoint.
    Slow(Duration),
    /// The user declines at the authorize endpoint.
    Deny,
    /// The token endpoint answers 200 with a body that is not JSON.
    Malformed,
}

#[derive(Default)]
pub struct State {
    pub mode: Mode,
    pub expires_in: u64,
    codes: HashMap<String, (String, String, String, String)>,
    refresh_tokens: HashMap<String, String>,
    access_tokens: Vec<String>,
    /// Which client id each successful code exchange used.
    pub exchanges: Vec<String>,
    /// Exchanges by the custom client that sent no client secret (accepted,
    /// as a public client; a test of secret durability expects none).
    pub custom_without_secret: usize,
    pub refreshes: usize,
    pub revoked: Vec<String>,
    counter: usize,
}

#[derive(Clone)]
pub struct FakeGoogle {
    pub url: String,
    pub state: Arc<Mutex<State>>,
}

impl FakeGoogle {
    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }

    pub fn set_expires_in(&self, seconds: u64) {
        self.state.lock().unwrap().expires_in = seconds;
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    /// Every token this fake has handed out (for log checks).
    pub fn issued_tokens(&self) -> Vec<String> {
        let s = self.state.lock().unwrap();
        s.access_tokens
            .iter()
            .chain(s.refresh_tokens.keys())
            .cloned()
            .collect()
    }

    /// Variables that point Drawbridge's `google` provider here.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("UPSTREAM_PROVIDER".into(), "google".into()),
            ("GOOGLE_CLIENT_ID".into(), CLIENT_ID.into()),
            ("GOOGLE_CLIENT_SECRET".into(), CLIENT_SECRET.into()),
            (
                "GOOGLE_OAUTH_SCOPES".into(),
                "openid email profile drive.file".into(),
            ),
            (
                "DRAWBRIDGE_UPSTREAM__AUTH_URI".into(),
                format!("{}/authorize", self.url),
            ),
            (
                "DRAWBRIDGE_UPSTREAM__TOKEN_URI".into(),
                format!("{}/token", self.url),
            ),
            (
                "DRAWBRIDGE_UPSTREAM__USERINFO_URI".into(),
                format!("{}/userinfo", self.url),
            ),
            (
                "DRAWBRIDGE_UPSTREAM__REVOCATION_URI".into(),
                format!("{}/revoke", self.url),
            ),
            ("DRAWBRIDGE_UPSTREAM__TIMEOUT_MS".into(), "1000".into()),
        ]
    }

    pub fn client_callback(&self) -> String {
        format!("{}/client/callback", self.url)
    }
}

pub fn start() -> FakeGoogle {
    let state = Arc::new(Mutex::new(State {
        expires_in: 3600,
        ..State::default()
    }));
    let data = web::Data::from(state.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/authorize", web::get().to(authorize))
            .route("/token", web::post().to(token))
            .route("/userinfo", web::get().to(userinfo))
            .route("/revoke", web::post().to(revoke))
            .route("/client/callback", web::get().to(client_callback))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    actix_web::rt::spawn(server.run());
    FakeGoogle {
        url: format!("http://127.0.0.1:{port}"),
        state,
    }
}

type Q = web::Query<HashMap<String, String>>;

fn redirect(to: &str, params: &[(&str, &str)]) -> HttpResponse {
    let mut url = url::Url::parse(to).unwrap();
    for (k, v) in params {
        url.query_pairs_mut().append_pair(k, v);
    }
    HttpResponse::Found()
        .insert_header(("Location", url.to_string()))
        .finish()
}

async fn authorize(state: web::Data<Mutex<State>>, q: Q) -> HttpResponse {
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    let client = get("client_id");
    assert!(
        client == CLIENT_ID || client == CUSTOM_CLIENT_ID,
        "unexpected upstream client {client}"
    );
    assert_eq!(get("code_challenge_method"), "S256");
    assert_eq!(get("access_type"), "offline");
    let mut s = state.lock().unwrap();
    if matches!(s.mode, Mode::Deny) {
        return redirect(
            &get("redirect_uri"),
            &[("error", "access_denied"), ("state", &get("state"))],
        );
    }
    s.counter += 1;
    let code = format!("4/fake-google-code-{}", s.counter);
    s.codes.insert(
        code.clone(),
        (
            get("code_challenge"),
            get("redirect_uri"),
            get("scope"),
            client,
        ),
    );
    redirect(
        &get("redirect_uri"),
        &[("code", &code), ("state", &get("state"))],
    )
}

fn id_token() -> String {
    let claims = json!({"iss": "https://accounts.google.com", "sub": SUB, "email": EMAIL, "email_verified": true});
    format!(
        "eyJhbGciOiJub25lIn0.{}.sig",
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

async fn token(
    state: web::Data<Mutex<State>>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let mode = state.lock().unwrap().mode.clone();
    match mode {
        Mode::TokenError(status, body) => {
            return HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
                .json(body)
        }
        Mode::Slow(d) => actix_web::rt::time::sleep(d).await,
        Mode::Malformed => {
            return HttpResponse::Ok()
                .content_type("application/json")
                .body("{\"access_token\": \"ya29.trunc")
        }
        _ => {}
    }
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    let client = get("client_id");
    let secret_ok = match client.as_str() {
        CLIENT_ID => get("client_secret") == CLIENT_SECRET,
        CUSTOM_CLIENT_ID => form
            .get("client_secret")
            .is_none_or(|s| s == CUSTOM_CLIENT_SECRET),
        _ => false,
    };
    if !secret_ok {
        return HttpResponse::Unauthorized().json(json!({"error": "invalid_client"}));
    }
    let mut s = state.lock().unwrap();
    if client == CUSTOM_CLIENT_ID && !form.contains_key("client_secret") {
        s.custom_without_secret += 1;
    }
    s.counter += 1;
    let access = format!("ya29.fake-access-{}", s.counter);
    s.access_tokens.push(access.clone());
    let expires_in = s.expires_in;
    match get("grant_type").as_str() {
        "authorization_code" => {
            let Some((challenge, redirect_uri, scope, issued_to)) = s.codes.remove(&get("code"))
            else {
                return HttpResponse::BadRequest()
                    .json(json!({"error": "invalid_grant", "error_description": "Bad Request"}));
            };
            let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(get("code_verifier").as_bytes()));
            if computed != challenge || redirect_uri != get("redirect_uri") || issued_to != client {
                return HttpResponse::BadRequest().json(
                    json!({"error": "invalid_grant", "error_description": "pkce/redirect/client"}),
                );
            }
            let refresh = format!("1//fake-refresh-{}", s.counter);
            s.refresh_tokens.insert(refresh.clone(), SUB.into());
            s.exchanges.push(client);
            HttpResponse::Ok().json(json!({
                "access_token": access, "expires_in": expires_in, "refresh_token": refresh,
                "scope": scope, "token_type": "Bearer", "id_token": id_token(),
            }))
        }
        "refresh_token" => {
            if !s.refresh_tokens.contains_key(&get("refresh_token")) {
                return HttpResponse::BadRequest().json(json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."}));
            }
            s.refreshes += 1;
            HttpResponse::Ok().json(json!({"access_token": access, "expires_in": expires_in, "token_type": "Bearer", "scope": "openid email"}))
        }
        _ => HttpResponse::BadRequest().json(json!({"error": "unsupported_grant_type"})),
    }
}

async fn userinfo(state: web::Data<Mutex<State>>, req: HttpRequest) -> HttpResponse {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if token.is_some_and(|t| state.lock().unwrap().access_tokens.iter().any(|a| a == t)) {
        HttpResponse::Ok().json(json!({"sub": SUB, "email": EMAIL}))
    } else {
        HttpResponse::Unauthorized().finish()
    }
}

async fn revoke(
    state: web::Data<Mutex<State>>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let mut s = state.lock().unwrap();
    let token = form.get("token").cloned().unwrap_or_default();
    s.refresh_tokens.remove(&token);
    s.revoked.push(token);
    HttpResponse::Ok().finish()
}

async fn client_callback(q: Q) -> HttpResponse {
    HttpResponse::Ok().json(q.into_inner())
}
