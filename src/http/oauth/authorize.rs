//! `GET /oauth/authorize` and the consent page (`POST /oauth/consent`):
//! the request is parsed here and handed to [`crate::service::signin`].
//!
//! Errors that cannot be sent back safely (unknown client, unregistered
//! redirect URI) are shown as a page, never redirected: no open redirect.
//! Consent is bound to the browser that started the login by a cookie
//! holding the transaction's CSRF token, so a forged form post fails; the
//! Approve answer binds the rest of the sign-in to the same browser with
//! another cookie, checked at the callback (see [`super::cookies`]).

use std::collections::HashMap;

use actix_web::body::BoxBody;
use actix_web::http::Method;
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, HttpRequest, HttpResponse};

use super::answers::{self, found};
use super::client_auth::parse_form;
use super::cookies;
use crate::domain::{matches_registered, DocumentUrl, RedirectUri, SecretToken};
use crate::http::allow;
use crate::http::middleware::limited;
use crate::http::{client_ip, AppState};
use crate::pages::{error_page, render, ConsentPage};
use crate::rate_limit::Limit;
use crate::service::signin::{self, AuthorizationRequest, ConsentAnswer, Decision, PendingConsent};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(["/oauth/authorize", "/authorize"])
            .wrap(from_fn(|req, next: Next<BoxBody>| {
                limited(Limit::Authorize, Method::GET, req, next)
            }))
            .route(web::get().to(authorize))
            .default_service(allow("GET")),
    )
    .service(
        web::resource("/oauth/consent")
            .route(web::post().to(consent))
            .default_service(allow("POST")),
    );
}

/// The longest authorization request query accepted: the parameters a
/// client sends fit in a few hundred bytes; more is refused, not parsed.
pub const MAX_QUERY_BYTES: usize = 8 * 1024;

async fn authorize(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let request = match authorization_request(&state, &req) {
        Ok(request) => request,
        Err(unreadable) => return unreadable.page(),
    };
    match signin::authorize(&state, request).await {
        Ok(pending) => consent_page(&state, &pending),
        Err(refused) => answers::refusal(&state, &refused),
    }
}

/// Why a request's parameters cannot be read: nothing in them is trusted
/// yet (not even the redirect URI), so it is shown as an `invalid_request`
/// page.
struct Unreadable {
    status: u16,
    description: String,
}

impl Unreadable {
    fn new(status: u16, description: impl Into<String>) -> Self {
        let description = description.into();
        Self {
            status,
            description,
        }
    }

    fn page(&self) -> HttpResponse {
        error_page(self.status, "invalid_request", &self.description)
    }
}

/// The authorization request's parameters (an empty one counts as absent).
fn authorization_request(
    state: &AppState,
    req: &HttpRequest,
) -> Result<AuthorizationRequest, Unreadable> {
    if req.query_string().len() > MAX_QUERY_BYTES {
        let description = "The authorization request is too long.";
        return Err(Unreadable::new(414, description));
    }
    let mut query = query_map(req).map_err(|e| Unreadable::new(400, e))?;
    let mut take = |k: &str| query.remove(k).filter(|v| !v.is_empty());
    Ok(AuthorizationRequest {
        client_id: take("client_id"),
        redirect_uri: take("redirect_uri"),
        state: take("state"),
        response_type: take("response_type"),
        code_challenge: take("code_challenge"),
        code_challenge_method: take("code_challenge_method"),
        scope: take("scope"),
        resource: take("resource"),
        upstream_client_id: take("upstream_client_id"),
        returning: cookies::presented_returning(state, req),
        ip: client_ip(req),
    })
}

/// The query's parameters, or what is wrong with them (shown as a page).
fn query_map(req: &HttpRequest) -> Result<HashMap<String, String>, String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string())
        .map_err(|_| "The authorization request is malformed.".to_owned())?;
    let mut map = HashMap::new();
    for (k, v) in pairs {
        if map.insert(k.clone(), v).is_some() {
            return Err(format!("The parameter `{k}` is repeated."));
        }
    }
    Ok(map)
}

async fn consent(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let answer = match consent_answer(&req, &body) {
        Ok(answer) => answer,
        Err(unreadable) => return unreadable.page(),
    };
    let txn_state = answer.state.clone();
    match signin::consent(&state, answer).await {
        Ok(next) => {
            let mut res = found(&next.location);
            let binding = cookies::binding_cookie(&state, &txn_state, &next.browser);
            let _ = res.add_cookie(&binding);
            res
        }
        Err(refused) => answers::refusal(&state, &refused),
    }
}

/// The consent form, with the cookie the browser sent with it.
fn consent_answer(req: &HttpRequest, body: &[u8]) -> Result<ConsentAnswer, Unreadable> {
    let form = parse_form(req, body)
        .map_err(|_| Unreadable::new(400, "The consent form is malformed."))?;
    let (Some(txn_state), Some(csrf)) = (form.get("state"), form.get("csrf")) else {
        return Err(Unreadable::new(400, "The consent form is incomplete."));
    };
    let txn_state = SecretToken::presented(txn_state.as_str());
    let decision = match form.get("decision").map(String::as_str) {
        Some("approve") => Some(Decision::Approve),
        Some("deny") => Some(Decision::Deny),
        _ => None,
    };
    Ok(ConsentAnswer {
        csrf_cookie: cookies::presented_consent(req, &txn_state),
        state: txn_state,
        csrf: SecretToken::presented(csrf.as_str()),
        decision,
        ip: client_ip(req),
    })
}

/// The consent page, with the cookie binding its form to this browser.
fn consent_page(state: &AppState, pending: &PendingConsent) -> HttpResponse {
    let client = &pending.client;
    let name = client.metadata.client_name.as_deref();
    let redirect_uri = &pending.redirect_uri;
    let host = url::Url::parse(redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| redirect_uri.to_owned());
    let document = client.client_id.document_url();
    let publisher = document.as_ref().map(DocumentUrl::host);
    let loopback = client
        .metadata
        .redirect_uris
        .iter()
        .find(|r| matches_registered(r, redirect_uri))
        .is_some_and(RedirectUri::is_on_loopback_host);
    let page = ConsentPage::new(
        name.unwrap_or("An unnamed application"),
        &host,
        pending.scopes.tokens(),
        &client.client_id,
        pending.state.expose(),
        pending.csrf.expose(),
    )
    .already_granted(pending.scopes.tokens(), &pending.granted)
    .published_by(publisher)
    .loopback(loopback)
    .posting_to(state.config.public_path(cookies::CONSENT_PATH));
    let mut res = render(200, &page);
    let cookie = cookies::consent_cookie(state, &pending.state, &pending.csrf);
    let _ = res.add_cookie(&cookie);
    res
}
