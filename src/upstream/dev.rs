//! The built-in development identity provider (`UPSTREAM_PROVIDER=dev`):
//! signs in one fixed demo user after a click, so the first run and the
//! demo work without a Google account. It speaks the same OAuth as Google
//! (authorization code with PKCE, refresh, userinfo, revocation), so the
//! demo exercises the same code paths. It only ever runs on loopback.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;

use super::Credentials;
use crate::domain::pkce::challenge_of;
use crate::domain::secret::random_b64;
use crate::pages::{message_page, render, DevSignInPage, DEV_TITLE};

pub const AUTHORIZE: &str = "/dev/authorize";
pub const TOKEN: &str = "/dev/token";
pub const USERINFO: &str = "/dev/userinfo";
pub const REVOKE: &str = "/dev/revoke";
pub const CLIENT_ID: &str = "drawbridge-dev";
pub const DEMO_SUB: &str = "dev-user-0001";
pub const DEMO_EMAIL: &str = "demo@drawbridge.invalid";
/// The `iss` of the dev provider's ID tokens (HS256, MACed with the client
/// secret, and validated like any other provider's).
pub const ISSUER: &str = "urn:drawbridge:dev";
const ACCESS_TTL: u64 = 3600;

struct DevCode {
    redirect_uri: String,
    challenge: String,
    scope: String,
    nonce: Option<String>,
    expires: Instant,
}

#[derive(Default)]
struct DevState {
    codes: HashMap<String, DevCode>,
    refresh_tokens: HashMap<String, String>,
    access_tokens: HashMap<String, Instant>,
}

pub struct DevProvider {
    secret: String,
    state: Mutex<DevState>,
}

impl DevProvider {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            secret: random_b64(32),
            state: Mutex::default(),
        })
    }

    pub fn credentials(&self) -> Credentials {
        Credentials {
            client_id: CLIENT_ID.into(),
            client_secret: Some(self.secret.clone()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, DevState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub fn configure(cfg: &mut web::ServiceConfig, provider: Arc<DevProvider>) {
    cfg.app_data(web::Data::from(provider))
        .service(
            web::resource(AUTHORIZE)
                .route(web::get().to(authorize_page))
                .route(web::post().to(authorize_submit)),
        )
        .service(web::resource(TOKEN).route(web::post().to(token)))
        .service(web::resource(USERINFO).route(web::get().to(userinfo)))
        .service(web::resource(REVOKE).route(web::post().to(revoke)));
}

#[derive(Deserialize)]
struct AuthorizeParams {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    scope: Option<String>,
    nonce: Option<String>,
}

fn oauth_error(status: u16, error: &str, description: &str) -> HttpResponse {
    HttpResponse::build(
        actix_web::http::StatusCode::from_u16(status)
            .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST),
    )
    .json(serde_json::json!({"error": error, "error_description": description}))
}

fn check_request(p: &AuthorizeParams) -> Result<(), &'static str> {
    if p.client_id.as_deref() != Some(CLIENT_ID) {
        return Err("unknown client_id");
    }
    if p.redirect_uri.as_deref().is_none_or(str::is_empty)
        || p.code_challenge.is_none()
        || p.state.is_none()
    {
        return Err("redirect_uri, state and code_challenge are required");
    }
    Ok(())
}

async fn authorize_page(params: web::Query<AuthorizeParams>) -> HttpResponse {
    if let Err(e) = check_request(&params) {
        return message_page(400, DEV_TITLE, e);
    }
    let fields = [
        ("client_id", &params.client_id),
        ("redirect_uri", &params.redirect_uri),
        ("state", &params.state),
        ("code_challenge", &params.code_challenge),
        ("scope", &params.scope),
        ("nonce", &params.nonce),
    ];
    let fields = fields
        .into_iter()
        .map(|(name, value)| (name, value.as_deref().unwrap_or("")))
        .collect();
    render(200, &DevSignInPage::new(AUTHORIZE, fields, DEMO_EMAIL))
}

async fn authorize_submit(
    provider: web::Data<DevProvider>,
    form: web::Form<AuthorizeParams>,
) -> HttpResponse {
    if let Err(e) = check_request(&form) {
        return message_page(400, DEV_TITLE, e);
    }
    let code = format!("dev_code_{}", random_b64(24));
    let redirect_uri = form.redirect_uri.clone().unwrap_or_default();
    provider.state().codes.insert(
        code.clone(),
        DevCode {
            redirect_uri: redirect_uri.clone(),
            challenge: form.code_challenge.clone().unwrap_or_default(),
            scope: form.scope.clone().unwrap_or_default(),
            nonce: form.nonce.clone(),
            expires: Instant::now() + Duration::from_secs(300),
        },
    );
    let Ok(mut target) = url::Url::parse(&redirect_uri) else {
        return message_page(400, DEV_TITLE, "redirect_uri is not a URL");
    };
    target
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", form.state.as_deref().unwrap_or(""));
    HttpResponse::Found()
        .insert_header(("Location", target.to_string()))
        .finish()
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: String,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

fn id_token(secret: &str, audience: &str, nonce: Option<&str>) -> String {
    use hmac::Mac;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let mut claims = serde_json::json!({
        "iss": ISSUER, "aud": audience, "sub": DEMO_SUB, "email": DEMO_EMAIL,
        "email_verified": true, "iat": now, "exp": now + ACCESS_TTL,
    });
    if let Some(n) = nonce {
        claims["nonce"] = serde_json::json!(n);
    }
    let signing_input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

async fn token(provider: web::Data<DevProvider>, form: web::Form<TokenForm>) -> HttpResponse {
    let authenticated = form.client_id.as_deref() == Some(CLIENT_ID)
        && form.client_secret.as_deref().is_some_and(|s| {
            crate::domain::SecretToken::presented(s).hash().verify(
                &crate::domain::SecretToken::presented(provider.secret.as_str()),
            )
        });
    if !authenticated {
        return oauth_error(401, "invalid_client", "unknown client or wrong secret");
    }
    let mut state = provider.state();
    let access = format!("dev_at_{}", random_b64(24));
    match form.grant_type.as_str() {
        "authorization_code" => {
            let Some(code) = form.code.as_deref().and_then(|c| state.codes.remove(c)) else {
                return oauth_error(400, "invalid_grant", "unknown or used code");
            };
            let verifier_ok = form
                .code_verifier
                .as_deref()
                .is_some_and(|v| challenge_of(v) == code.challenge);
            if code.expires < Instant::now()
                || form.redirect_uri.as_deref() != Some(code.redirect_uri.as_str())
                || !verifier_ok
            {
                return oauth_error(
                    400,
                    "invalid_grant",
                    "code expired, redirect_uri mismatch or PKCE failure",
                );
            }
            let refresh = format!("dev_rt_{}", random_b64(24));
            state
                .refresh_tokens
                .insert(refresh.clone(), code.scope.clone());
            state.access_tokens.insert(
                access.clone(),
                Instant::now() + Duration::from_secs(ACCESS_TTL),
            );
            HttpResponse::Ok().json(serde_json::json!({
                "access_token": access, "token_type": "Bearer", "expires_in": ACCESS_TTL,
                "refresh_token": refresh, "scope": code.scope, "id_token": id_token(&provider.secret, CLIENT_ID, code.nonce.as_deref()),
            }))
        }
        "refresh_token" => {
            let Some(scope) = form
                .refresh_token
                .as_deref()
                .and_then(|r| state.refresh_tokens.get(r))
                .cloned()
            else {
                return oauth_error(400, "invalid_grant", "unknown refresh token");
            };
            state.access_tokens.insert(
                access.clone(),
                Instant::now() + Duration::from_secs(ACCESS_TTL),
            );
            HttpResponse::Ok().json(serde_json::json!({
                "access_token": access, "token_type": "Bearer", "expires_in": ACCESS_TTL, "scope": scope,
            }))
        }
        _ => oauth_error(
            400,
            "unsupported_grant_type",
            "authorization_code or refresh_token",
        ),
    }
}

async fn userinfo(provider: web::Data<DevProvider>, req: HttpRequest) -> HttpResponse {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let live = token
        .and_then(|t| provider.state().access_tokens.get(t).copied())
        .is_some_and(|exp| exp > Instant::now());
    if !live {
        return oauth_error(401, "invalid_token", "unknown or expired access token");
    }
    HttpResponse::Ok()
        .json(serde_json::json!({"sub": DEMO_SUB, "email": DEMO_EMAIL, "email_verified": true}))
}

#[derive(Deserialize)]
struct RevokeForm {
    token: String,
}

async fn revoke(provider: web::Data<DevProvider>, form: web::Form<RevokeForm>) -> HttpResponse {
    let mut state = provider.state();
    state.refresh_tokens.remove(&form.token);
    state.access_tokens.remove(&form.token);
    HttpResponse::Ok().finish()
}
