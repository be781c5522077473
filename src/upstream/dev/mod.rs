//! The built-in development identity provider (`UPSTREAM_PROVIDER=dev`):
//! signs in one fixed demo user after a click, so the first run and the
//! demo work without a Google account. It speaks the same OAuth as Google
//! (authorization code with PKCE, refresh, userinfo, revocation), so the
//! demo exercises the same code paths. It only ever runs on loopback.
//!
//! Its codes and tokens live in the configured store ([`state`]), and its
//! client secret comes from the keyring, so instances that share a
//! database and a key file sign the demo user in together behind a load
//! balancer.

mod state;

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;

use super::Credentials;
use crate::clock::Clock;
use crate::domain::pkce::challenge_of;
use crate::domain::secret::random_b64;
use crate::pages::{message_page, render, DevSignInPage, DEV_TITLE};
use crate::storage::{DevProviderTree, Owned, StoreError};
use state::{DevCode, DevState, ACCESS_TTL};

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
/// What the client secret is derived from the keyring for.
pub const SECRET_PURPOSE: &str = "dev provider client secret";

pub struct DevProvider {
    secret: String,
    state: Arc<DevState>,
}

impl DevProvider {
    /// The provider over its tree of the store. `secret_key` (derived from
    /// the keyring with [`SECRET_PURPOSE`]) makes the client secret the
    /// same on every instance that shares the key; without one (a mode
    /// that does not encrypt) it is random, this process's own.
    pub fn new(
        trees: Owned<DevProviderTree>,
        clock: Clock,
        secret_key: Option<[u8; 32]>,
    ) -> Arc<Self> {
        let secret = match secret_key {
            Some(key) => URL_SAFE_NO_PAD.encode(key),
            None => random_b64(32),
        };
        Arc::new(Self {
            secret,
            state: Arc::new(DevState::new(trees, clock)),
        })
    }

    pub fn credentials(&self) -> Credentials {
        Credentials {
            client_id: CLIENT_ID.into(),
            client_secret: Some(self.secret.clone()),
        }
    }

    /// Runs `f` on the state off the event loop (the store may be a
    /// database across the network).
    async fn with_state<R: Send + 'static>(
        &self,
        f: impl FnOnce(&DevState) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let state = self.state.clone();
        actix_web::rt::task::spawn_blocking(move || f(&state))
            .await
            .map_err(|e| StoreError::Engine(e.to_string()))?
    }
}

/// The answer when the store fails: try again later.
fn unavailable(e: &StoreError) -> HttpResponse {
    tracing::error!(error = %e, "dev provider: store unavailable");
    HttpResponse::ServiceUnavailable()
        .insert_header(("Retry-After", "1"))
        .json(serde_json::json!({
            "error": "temporarily_unavailable",
            "error_description": "the store is unavailable; try again",
        }))
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
    let Ok(mut target) = url::Url::parse(&redirect_uri) else {
        return message_page(400, DEV_TITLE, "redirect_uri is not a URL");
    };
    let request = DevCode {
        redirect_uri,
        challenge: form.code_challenge.clone().unwrap_or_default(),
        scope: form.scope.clone().unwrap_or_default(),
        nonce: form.nonce.clone(),
    };
    let issued = code.clone();
    if let Err(e) = provider
        .with_state(move |s| s.issue_code(&issued, request))
        .await
    {
        tracing::error!(error = %e, "dev provider: store unavailable");
        return message_page(503, DEV_TITLE, "the store is unavailable; try again");
    }
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
        "email_verified": true, "iat": now, "exp": now + ACCESS_TTL as u64,
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
    let answer = match form.grant_type.as_str() {
        "authorization_code" => redeem_code(&provider, form.into_inner()).await,
        "refresh_token" => refresh(&provider, form.into_inner()).await,
        _ => Ok(oauth_error(
            400,
            "unsupported_grant_type",
            "authorization_code or refresh_token",
        )),
    };
    answer.unwrap_or_else(|e| unavailable(&e))
}

async fn redeem_code(provider: &DevProvider, form: TokenForm) -> Result<HttpResponse, StoreError> {
    let code = form.code.unwrap_or_default();
    // Taken before it is checked: a failed attempt uses the code up.
    let Some(code) = provider.with_state(move |s| s.take_code(&code)).await? else {
        return Ok(oauth_error(
            400,
            "invalid_grant",
            "unknown, expired or used code",
        ));
    };
    let verifier_ok = form
        .code_verifier
        .as_deref()
        .is_some_and(|v| challenge_of(v) == code.challenge);
    if form.redirect_uri.as_deref() != Some(code.redirect_uri.as_str()) || !verifier_ok {
        return Ok(oauth_error(
            400,
            "invalid_grant",
            "redirect_uri mismatch or PKCE failure",
        ));
    }
    let access = format!("dev_at_{}", random_b64(24));
    let refresh = format!("dev_rt_{}", random_b64(24));
    let (a, r, scope) = (access.clone(), refresh.clone(), code.scope.clone());
    provider
        .with_state(move |s| {
            s.issue_refresh(&r, &scope)?;
            s.issue_access(&a)
        })
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "access_token": access, "token_type": "Bearer", "expires_in": ACCESS_TTL,
        "refresh_token": refresh, "scope": code.scope, "id_token": id_token(&provider.secret, CLIENT_ID, code.nonce.as_deref()),
    })))
}

async fn refresh(provider: &DevProvider, form: TokenForm) -> Result<HttpResponse, StoreError> {
    let refresh = form.refresh_token.unwrap_or_default();
    let access = format!("dev_at_{}", random_b64(24));
    let issued = access.clone();
    let scope = provider
        .with_state(move |s| {
            let scope = s.refresh_scope(&refresh)?;
            if scope.is_some() {
                s.issue_access(&issued)?;
            }
            Ok(scope)
        })
        .await?;
    let Some(scope) = scope else {
        return Ok(oauth_error(400, "invalid_grant", "unknown refresh token"));
    };
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "access_token": access, "token_type": "Bearer", "expires_in": ACCESS_TTL, "scope": scope,
    })))
}

async fn userinfo(provider: web::Data<DevProvider>, req: HttpRequest) -> HttpResponse {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let live = match token {
        Some(t) => provider.with_state(move |s| s.access_is_live(&t)).await,
        None => Ok(false),
    };
    match live {
        Ok(true) => HttpResponse::Ok().json(
            serde_json::json!({"sub": DEMO_SUB, "email": DEMO_EMAIL, "email_verified": true}),
        ),
        Ok(false) => oauth_error(401, "invalid_token", "unknown or expired access token"),
        Err(e) => unavailable(&e),
    }
}

#[derive(Deserialize)]
struct RevokeForm {
    token: String,
}

async fn revoke(provider: web::Data<DevProvider>, form: web::Form<RevokeForm>) -> HttpResponse {
    let token = form.into_inner().token;
    match provider.with_state(move |s| s.revoke(&token)).await {
        Ok(()) => HttpResponse::Ok().finish(),
        Err(e) => unavailable(&e),
    }
}
