//! A stand-in for Google's OAuth endpoints, run inside the test process:
//! authorize (the user consents at once), token (code and refresh, with
//! PKCE), userinfo, revoke, and error modes. Also serves the MCP client's
//! redirect target, which echoes what it received.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openidconnect::core::{CoreJwsSigningAlgorithm, CoreRsaPrivateSigningKey};
use openidconnect::{JsonWebKeyId, PrivateSigningKey};
use serde_json::json;
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "fake-google-client.apps.googleusercontent.com";
pub const CLIENT_SECRET: &str = "fake-google-secret";
pub const CUSTOM_CLIENT_ID: &str = "custom-client.apps.googleusercontent.com";
pub const CUSTOM_CLIENT_SECRET: &str = "custom-google-secret";
pub const SUB: &str = "109876543210";
pub const EMAIL: &str = "ada@example.com";
/// The key id of the fake's ID-token signing key.
pub const KID: &str = "fake-google-1";
/// The fake's RS256 signing key (test only; generated once with
/// `openssl genrsa -traditional 2048`).
const SIGNING_KEY_PEM: &str = "\
-----BEGIN RSA PRIVATE KEY-----
MIIEpAIBAAKCAQEAvjRwPW9YhTFIyH9y30q9yArDuqyMJfa3Ka+CtFwST+WW2hvl
+OYliJ2cJtmSeOeNmb6LKL6JsqTNly0m5dOcmxW7j6hMzJ3ox6jc4SxC8taVZ4Ge
WcPrReBj4uB3e4BWo10U6hNHSUpgV7CREdzjBYcz5MKt0VYwMt4qW0sbKbuPsrPT
RitlMagjeWf2zLwG2a5U3AX1y9/FkjxKEguI1vWSKr8a2eKruObHenDflGoXbdCe
15sQxv413vRojR7r1uxpm5adPWXbFnAzlzZ3+3Vc+5k+qvSmMCdWkYA8uLOhnh2h
+GxEsaoetJ2EmBBOG2vlHK+00KRdI0HcutzOSQIDAQABAoIBAAJMENT1HM0TAM2H
GISQ2wTo+F8vSUwGFEU5HOt/tyrm23EL6DWe1fI18RZZB1dVeJTUQ8r8rh4Ntnvu
bCtXaGtJEmhUQIUyHQcYR36isbZMGCbVXmu4HYXNBXfOfTLtJF65t5ByJijA8LPu
anocQFOnQ92t6jp+f3uFyl4q5IuW9nPGxyrYgbOBgT195HSaHt+10EgeFy/hz5sn
jj4oktqn5Z2asQ+8IUGKTwpbDbwU/tPIHWB3WVpj204RLbGOZ3/mtlnHVC3HbCs+
rBq36AJlp+Dcp7nW6WHIHaxxHzlBxm8hp+7xNzIRtheLj03zWqwi6GjNdgELKPh8
zxN9bIECgYEA9SIAVcXYq/x9TxUaFGdU1sPp0+kytf7WfCC/lEcb1B+hRpVobhyZ
f18+0i6X2qVsMnNCFovccyNpsdSrU5PbP72vuTeOAuIQp49aW9DkhnVnw0BEl6Gu
j9Zuc2G23W3LCjzaTSCvFbPlpLe8v5FVaiTqF99+0fuypgit6rrZnGECgYEAxqMQ
AuD5cJeWSu6xMklmteF40noQHlWG8iBp++jAeuiSeA40Vj5v06xvVKgojjBAY9aD
KS3qVpE89o+1WU35GiFBIrp+q8mXhcnDvSBkynOQV2vqiXGJnSk1Gf2O8Ds450yI
sAUiNn/7Fc0fPdOTZDVjtRMvp6Q2w6uMfFWPuukCgYBwphhrUkk4+AYJ4pOijr3R
GCULah4QvrSIRHBlzqu+Nm7hxeVAvMnZW8a9xgWox95J7OeQ/uLm0n5O54F4Hfli
eGQZhKsxLfwjVGBc00lBdRCjDJS47ecPWKZXRa9IYJ0u7joPuZZcLdi5cmo9yqbq
6V3ebKmWC8nUPSbXONip4QKBgQCMF4L6VMr3wqFn1bI5QhVjX1LENvxZOH7FE2FM
HhpqVM7AR1xYGw7pXeri7Po1VgiDoU295DkqtqIlTrNa+age6qcypA8kfzgTTnpz
T35mXlzFm0G9j8q7gc2GuBJwkYQPdSXN5sD7aQWfmZxYEXkZKqJYmeB5PlK1a67Y
HcwRyQKBgQCSYRMBsLxJcUAdXFPZS9vxvIfKC1OkPV5KMeE8sIvUTrJ5wajIH3zA
Y041NUpRjHHpEeT1ykTJU/LL9MbR32M0y/87ik/EihXjnMRvYx2yL+f8a3Ptyy2F
zBYIqx/ql6jYGkpO5ODNDtiZT4UI0QmqkC3v0/IMsk+VX04Ovok7QA==
-----END RSA PRIVATE KEY-----
";

static SIGNING_KEY: LazyLock<CoreRsaPrivateSigningKey> = LazyLock::new(|| {
    CoreRsaPrivateSigningKey::from_pem(SIGNING_KEY_PEM, Some(JsonWebKeyId::new(KID.into())))
        .expect("test key")
});

/// Who signs in at the fake (the next authorization takes the current one).
#[derive(Clone, Debug)]
pub struct FakeUser {
    pub sub: String,
    pub email: String,
    /// The `email_verified` claim as sent (`None`: left out).
    pub email_verified: Option<serde_json::Value>,
    /// The `hd` claim (a Workspace account's domain; `None`: left out).
    pub hd: Option<String>,
}

impl Default for FakeUser {
    fn default() -> Self {
        Self {
            sub: SUB.into(),
            email: EMAIL.into(),
            email_verified: Some(json!(true)),
            hd: None,
        }
    }
}

/// How the ID token is spoiled, if at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdTokenFault {
    /// The claims are changed after signing (a forged email).
    BadSignature,
    /// Issued to another client.
    WrongAudience,
    /// Issued by another issuer.
    WrongIssuer,
    /// Expired an hour ago.
    Expired,
    /// Signed for another sign-in (another nonce).
    WrongNonce,
    /// Not signed at all (`alg: none`).
    Unsigned,
}

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
    /// Who signs in next.
    pub user: FakeUser,
    /// How the next ID tokens are spoiled.
    pub id_token_fault: Option<IdTokenFault>,
    /// Whether the token endpoint returns an ID token at all.
    pub no_id_token: bool,
    /// The issuer the ID tokens name (the fake's URL).
    issuer: String,
    codes: HashMap<String, Code>,
    refresh_tokens: HashMap<String, String>,
    access_tokens: Vec<String>,
    /// Who each access token was issued to (userinfo).
    token_users: HashMap<String, FakeUser>,
    /// Which client id each successful code exchange used.
    pub exchanges: Vec<String>,
    /// Exchanges by the custom client that sent no client secret (accepted,
    /// as a public client; a test of secret durability expects none).
    pub custom_without_secret: usize,
    pub refreshes: usize,
    pub revoked: Vec<String>,
    /// The `scope` of the last authorization request.
    pub last_authorize_scope: String,
    /// The `hd` hint of the last authorization request, if any.
    pub last_authorize_hd: Option<String>,
    counter: usize,
}

struct Code {
    challenge: String,
    redirect_uri: String,
    scope: String,
    client: String,
    nonce: Option<String>,
    user: FakeUser,
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

    /// The next sign-in is this user.
    pub fn set_user(&self, sub: &str, email: &str, email_verified: Option<serde_json::Value>) {
        self.state.lock().unwrap().user = FakeUser {
            sub: sub.into(),
            email: email.into(),
            email_verified,
            hd: None,
        };
    }

    /// The next sign-in is a Google Workspace account of `hd`.
    pub fn set_workspace_user(&self, sub: &str, email: &str, hd: &str) {
        self.state.lock().unwrap().user = FakeUser {
            sub: sub.into(),
            email: email.into(),
            email_verified: Some(json!(true)),
            hd: Some(hd.into()),
        };
    }

    pub fn set_id_token_fault(&self, fault: Option<IdTokenFault>) {
        self.state.lock().unwrap().id_token_fault = fault;
    }

    pub fn set_expires_in(&self, seconds: u64) {
        self.state.lock().unwrap().expires_in = seconds;
    }

    /// Accepts `token` as a refresh token of user `sub` (one this fake
    /// issued in an earlier run, kept in a data-directory fixture).
    pub fn accept_refresh_token(&self, token: &str, sub: &str) {
        let mut s = self.state.lock().unwrap();
        s.refresh_tokens.insert(token.into(), sub.into());
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
            // The preset's endpoints moved here: so do its issuer and keys.
            ("DRAWBRIDGE_UPSTREAM__ISSUER".into(), self.url.clone()),
            (
                "DRAWBRIDGE_UPSTREAM__JWKS_URI".into(),
                format!("{}/jwks", self.url),
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
    LazyLock::force(&SIGNING_KEY);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/authorize", web::get().to(authorize))
            .route("/token", web::post().to(token))
            .route("/userinfo", web::get().to(userinfo))
            .route("/revoke", web::post().to(revoke))
            .route("/jwks", web::get().to(jwks))
            .route(
                "/.well-known/openid-configuration",
                web::get().to(discovery),
            )
            .route("/client/callback", web::get().to(client_callback))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    actix_web::rt::spawn(server.run());
    let url = format!("http://127.0.0.1:{port}");
    state.lock().unwrap().issuer = url.clone();
    FakeGoogle { url, state }
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
    s.last_authorize_scope = get("scope");
    s.last_authorize_hd = q.get("hd").cloned();
    if matches!(s.mode, Mode::Deny) {
        return redirect(
            &get("redirect_uri"),
            &[("error", "access_denied"), ("state", &get("state"))],
        );
    }
    s.counter += 1;
    // Unguessable like Google's, and remembered: the suite's log scan
    // checks that no upstream code (nor our state) reaches a log line.
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let digest = Sha256::digest(format!("{}:{nonce}:{}", s.counter, get("state")));
    let code = format!("4/0Afake{}", URL_SAFE_NO_PAD.encode(&digest[..18]));
    crate::helpers::remember_secret(&code);
    crate::helpers::remember_secret(&get("state"));
    let user = s.user.clone();
    s.codes.insert(
        code.clone(),
        Code {
            challenge: get("code_challenge"),
            redirect_uri: get("redirect_uri"),
            scope: get("scope"),
            client,
            nonce: q.get("nonce").cloned(),
            user,
        },
    );
    redirect(
        &get("redirect_uri"),
        &[("code", &code), ("state", &get("state"))],
    )
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An RS256 ID token for `user`, as Google would sign it, spoiled by `fault`.
fn id_token(
    issuer: &str,
    audience: &str,
    user: &FakeUser,
    nonce: Option<&str>,
    fault: Option<IdTokenFault>,
) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut claims = json!({
        "iss": issuer, "aud": audience, "azp": audience, "sub": user.sub, "email": user.email,
        "iat": now, "exp": now + 3600,
    });
    if let Some(v) = &user.email_verified {
        claims["email_verified"] = v.clone();
    }
    if let Some(hd) = &user.hd {
        claims["hd"] = json!(hd);
    }
    if let Some(n) = nonce {
        claims["nonce"] = json!(n);
    }
    match fault {
        Some(IdTokenFault::WrongAudience) => {
            claims["aud"] = json!("someone-else.apps.googleusercontent.com")
        }
        Some(IdTokenFault::WrongIssuer) => claims["iss"] = json!("https://evil.example"),
        Some(IdTokenFault::Expired) => {
            claims["iat"] = json!(now - 7200);
            claims["exp"] = json!(now - 3600);
        }
        Some(IdTokenFault::WrongNonce) => claims["nonce"] = json!("another-sign-in"),
        _ => {}
    }
    if fault == Some(IdTokenFault::Unsigned) {
        return format!(
            "{}.{}.",
            b64(br#"{"alg":"none"}"#),
            b64(claims.to_string().as_bytes())
        );
    }
    let header = json!({"alg": "RS256", "kid": KID, "typ": "JWT"});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = SIGNING_KEY
        .sign(
            &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            input.as_bytes(),
        )
        .unwrap();
    if fault == Some(IdTokenFault::BadSignature) {
        claims["email"] = json!("forged@example.com");
        claims["email_verified"] = json!(true);
        let (header, _) = input.split_once('.').unwrap();
        return format!(
            "{header}.{}.{}",
            b64(claims.to_string().as_bytes()),
            b64(&signature)
        );
    }
    format!("{input}.{}", b64(&signature))
}

async fn jwks() -> HttpResponse {
    HttpResponse::Ok().json(json!({"keys": [SIGNING_KEY.as_verification_key()]}))
}

async fn discovery(state: web::Data<Mutex<State>>) -> HttpResponse {
    let url = state.lock().unwrap().issuer.clone();
    HttpResponse::Ok().json(json!({
        "issuer": url,
        "authorization_endpoint": format!("{url}/authorize"),
        "token_endpoint": format!("{url}/token"),
        "userinfo_endpoint": format!("{url}/userinfo"),
        "revocation_endpoint": format!("{url}/revoke"),
        "jwks_uri": format!("{url}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
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
            let Some(Code {
                challenge,
                redirect_uri,
                scope,
                client: issued_to,
                nonce,
                user,
            }) = s.codes.remove(&get("code"))
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
            s.refresh_tokens.insert(refresh.clone(), user.sub.clone());
            s.token_users.insert(access.clone(), user.clone());
            let mut body = json!({
                "access_token": access, "expires_in": expires_in, "refresh_token": refresh,
                "scope": scope, "token_type": "Bearer",
            });
            if !s.no_id_token {
                body["id_token"] = json!(id_token(
                    &s.issuer,
                    &client,
                    &user,
                    nonce.as_deref(),
                    s.id_token_fault
                ));
            }
            s.exchanges.push(client);
            HttpResponse::Ok().json(body)
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
    let s = state.lock().unwrap();
    if token.is_some_and(|t| s.access_tokens.iter().any(|a| a == t)) {
        let user = token
            .and_then(|t| s.token_users.get(t))
            .cloned()
            .unwrap_or_default();
        let mut body = json!({"sub": user.sub, "email": user.email});
        if let Some(v) = user.email_verified {
            body["email_verified"] = v;
        }
        HttpResponse::Ok().json(body)
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
