//! `GET /oauth/authorize` and the consent page (`POST /oauth/consent`).
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
use subtle::ConstantTimeEq;

use super::client_auth::parse_form;
use super::{cookies, found, redirect_error, upstream_credentials, UPSTREAM_PKCE};
use crate::actors::registry::{ClientView, GetClient};
use crate::actors::token_broker::{BeginAuthorization, BrokerError, DecideConsent, NewTransaction};
use crate::actors::vault::SealSecret;
use crate::audit::AuditEvent;
use crate::domain::pkce::{challenge_of, new_verifier};
use crate::domain::{matches_registered, CodeChallenge, ScopeSet, SecretToken};
use crate::http::middleware::limited;
use crate::http::{client_ip, AppState};
use crate::metrics::METRICS;
use crate::pages::{describe_scope, error_page, escape, page};
use crate::rate_limit::Limit;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(["/oauth/authorize", "/authorize"])
            .wrap(from_fn(|req, next: Next<BoxBody>| {
                limited(Limit::Authorize, Method::GET, req, next)
            }))
            .route(web::get().to(authorize))
            .default_service(web::to(crate::http::method_not_allowed)),
    )
    .route("/oauth/consent", web::post().to(consent));
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

pub fn state_id(state: &SecretToken) -> String {
    state
        .hash()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The longest authorization request query accepted: the parameters a
/// client sends fit in a few hundred bytes; more is refused, not parsed.
pub const MAX_QUERY_BYTES: usize = 8 * 1024;
/// The longest `state` accepted: it is stored with the sign-in until the
/// callback, so it is bounded (RFC 6749 leaves its size to the server).
pub const MAX_STATE_BYTES: usize = 1024;
/// The longest `upstream_client_id` accepted (as at registration).
const MAX_UPSTREAM_CLIENT_ID: usize = 200;

async fn authorize(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    if req.query_string().len() > MAX_QUERY_BYTES {
        // Nothing in it is trusted yet (not even the redirect URI): a page.
        return error_page(
            414,
            "invalid_request",
            "The authorization request is too long.",
        );
    }
    let q = match query_map(&req) {
        Ok(q) => q,
        Err(problem) => return error_page(400, "invalid_request", &problem),
    };
    let get = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let now = state.clock.now();
    // 1. Who is asking, and where to answer: failures here are shown, not redirected.
    let client = match get("client_id") {
        Some(id) => match state.registry.read(GetClient { client_id: id.to_owned(), now }).await {
            Ok(Ok(Some(c))) => c,
            Ok(Ok(None)) => return error_page(400, "invalid_client", "This application is not registered here (or its registration expired). Reconnect it to register again."),
            _ => return error_page(503, "temporarily_unavailable", "The server could not look up the application."),
        },
        None => return error_page(400, "invalid_request", "The request names no client_id."),
    };
    let registered = &client.metadata.redirect_uris;
    let redirect_uri = match get("redirect_uri") {
        Some(r) if registered.iter().any(|reg| matches_registered(reg, r)) => r.to_owned(),
        Some(_) => {
            return error_page(
                400,
                "invalid_request",
                "The redirect_uri is not one this application registered.",
            )
        }
        None if registered.len() == 1 => registered[0].clone(),
        None => {
            return error_page(
                400,
                "invalid_request",
                "The request needs a redirect_uri (the application registered several).",
            )
        }
    };
    let client_state = get("state").unwrap_or("").to_owned();
    if client_state.len() > MAX_STATE_BYTES {
        // The client and its redirect URI are known: answer there (RFC 6749
        // §4.1.2.1), without echoing the oversized state back.
        return redirect_error(
            &state,
            &redirect_uri,
            "",
            "invalid_request",
            &format!("state is longer than {MAX_STATE_BYTES} bytes"),
        );
    }
    let fail = |error: &str, description: &str| {
        redirect_error(&state, &redirect_uri, &client_state, error, description)
    };
    // 2. The rest is answered at the client's redirect URI.
    if get("response_type") != Some("code") {
        return fail("unsupported_response_type", "response_type must be code");
    }
    // `state` is optional: PKCE S256, which is mandatory here, already
    // protects the client from CSRF (OAuth 2.1 §7.5.2, RFC 9700 §2.1), and
    // the official MCP TypeScript SDK sends no state.
    let challenge = match CodeChallenge::parse(get("code_challenge"), get("code_challenge_method"))
    {
        Ok(c) => c,
        Err(e) => return fail("invalid_request", &e.to_string()),
    };
    let scopes = match requested_scopes(&state, &client, get("scope")) {
        Ok(s) => s,
        Err(description) => return fail("invalid_scope", &description),
    };
    // This server's resource, with at most one trailing slash; stored in
    // its canonical form (as the token endpoint compares it).
    let ours = state.config.resource();
    let resource = match get("resource") {
        None => None,
        Some(r) if r.len() <= ours.len() + 1 && r.trim_end_matches('/') == ours => Some(ours),
        Some(_) => {
            return fail(
                "invalid_target",
                "resource is not this server's protected resource",
            )
        }
    };
    let upstream_client_id = get("upstream_client_id").map(str::to_owned);
    if upstream_client_id.is_some() && !state.config.settings.oauth.allow_custom_upstream_clients {
        return fail(
            "invalid_request",
            "custom upstream clients are not enabled on this server",
        );
    }
    if upstream_client_id.as_deref().is_some_and(|id| {
        id.chars().count() > MAX_UPSTREAM_CLIENT_ID || id.chars().any(char::is_control)
    }) {
        return fail("invalid_request", "upstream_client_id is malformed");
    }
    let request = NewTransaction {
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.clone(),
        client_state: client_state.clone(),
        code_challenge: challenge.as_str().to_owned(),
        scopes: scopes.tokens().to_vec(),
        resource,
        upstream_client_id,
    };
    let begun = match state.broker.send(BeginAuthorization { request, now }).await {
        Ok(Ok(b)) => b,
        _ => {
            return fail(
                "temporarily_unavailable",
                "the sign-in could not be started; try again",
            )
        }
    };
    AuditEvent::AuthorizationStarted {
        client_id: &client.client_id,
        ip: &client_ip(&req),
    }
    .emit();
    consent_page(
        &state,
        &client,
        &redirect_uri,
        &scopes,
        &begun.state,
        &begun.csrf,
    )
}

fn requested_scopes(
    state: &AppState,
    client: &ClientView,
    raw: Option<&str>,
) -> Result<ScopeSet, String> {
    let config = &state.config;
    let scopes = match raw {
        None => config.default_scopes.clone(),
        Some(raw) => {
            let asked = ScopeSet::parse(raw, config.registration.google_scope_aliases)
                .map_err(|e| e.to_string())?;
            asked
                .ensure_within(&config.registration.supported_scopes)
                .map_err(|e| e.to_string())?;
            asked
        }
    };
    if let Some(registered) = &client.metadata.scope {
        let allowed = ScopeSet::parse(registered, false).map_err(|e| e.to_string())?;
        let within: Vec<String> = scopes
            .tokens()
            .iter()
            .filter(|s| allowed.tokens().contains(s))
            .cloned()
            .collect();
        if raw.is_some() {
            scopes
                .ensure_within(&allowed)
                .map_err(|e| format!("{e} for this client"))?;
        } else if within.is_empty() {
            return Ok(allowed);
        } else {
            return Ok(ScopeSet::from_tokens(within));
        }
    }
    Ok(scopes)
}

fn consent_page(
    state: &AppState,
    client: &ClientView,
    redirect_uri: &str,
    scopes: &ScopeSet,
    txn_state: &SecretToken,
    csrf: &SecretToken,
) -> HttpResponse {
    let name = client
        .metadata
        .client_name
        .as_deref()
        .unwrap_or("An unnamed application");
    let host = url::Url::parse(redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| redirect_uri.to_owned());
    let items: String = scopes
        .tokens()
        .iter()
        .map(|s| format!("<li>{}</li>", escape(&describe_scope(s))))
        .collect();
    let body = format!(
        r#"<p><strong>{name}</strong> wants to use your account through this server.</p>
<p>After you sign in, you will be sent back to <span class="host">{host}</span>.</p>
<p>It asks to:</p><ul>{items}</ul>
<p class="muted">Only continue if you started this from {name} and trust it. Client id: <code>{id}</code></p>
<form method="post" action="/oauth/consent">
<input type="hidden" name="state" value="{st}"><input type="hidden" name="csrf" value="{csrf}">
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny">Deny</button></form>"#,
        name = escape(name),
        host = escape(&host),
        id = escape(&client.client_id),
        st = escape(txn_state.expose()),
        csrf = escape(csrf.expose()),
    );
    let mut res = page(200, "Allow access?", &body);
    let _ = res.add_cookie(&cookies::consent_cookie(state, txn_state, csrf));
    res
}

async fn consent(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let form = match parse_form(&req, &body) {
        Ok(f) => f,
        Err(_) => return error_page(400, "invalid_request", "The consent form is malformed."),
    };
    let (Some(txn_state), Some(csrf)) = (form.get("state"), form.get("csrf")) else {
        return error_page(400, "invalid_request", "The consent form is incomplete.");
    };
    let txn_state = SecretToken::presented(txn_state.as_str());
    let csrf = SecretToken::presented(csrf.as_str());
    let bound = cookies::presented_consent(&req, &txn_state)
        .is_some_and(|c| bool::from(c.expose().as_bytes().ct_eq(csrf.expose().as_bytes())));
    if !bound {
        return error_page(403, "access_denied", "This consent form was not shown in this browser. Start the sign-in again from your application.");
    }
    let approve = match form.get("decision").map(String::as_str) {
        Some("approve") => true,
        Some("deny") => false,
        _ => return error_page(400, "invalid_request", "Choose Approve or Deny."),
    };
    let now = state.clock.now();
    let ip = client_ip(&req);
    // On approval the sign-in is bound to this browser: only the browser
    // that holds this cookie can complete it at the callback.
    let browser = SecretToken::generate("");
    let txn = match state
        .broker
        .send(DecideConsent {
            state: txn_state.clone(),
            csrf,
            approve,
            browser: browser.hash(),
            now,
        })
        .await
    {
        Ok(Ok(t)) => t,
        Ok(Err(BrokerError::UnknownTransaction)) => {
            return error_page(
                400,
                "invalid_request",
                "This sign-in expired or was already completed.",
            )
        }
        Ok(Err(BrokerError::Csrf)) => {
            return error_page(
                403,
                "access_denied",
                "This consent form is not valid (or was already submitted).",
            )
        }
        _ => {
            return error_page(
                503,
                "temporarily_unavailable",
                "The server could not record your answer; try again.",
            )
        }
    };
    AuditEvent::Consent {
        client_id: &txn.client_id,
        ip: &ip,
        approved: approve,
    }
    .emit();
    METRICS
        .consent
        .with_label_values(&[if approve { "approved" } else { "denied" }])
        .inc();
    if !approve {
        return redirect_error(
            &state,
            &txn.redirect_uri,
            &txn.client_state,
            "access_denied",
            "the user denied the request",
        );
    }
    let client = match state
        .registry
        .read(GetClient {
            client_id: txn.client_id.clone(),
            now,
        })
        .await
    {
        Ok(Ok(Some(c))) => c,
        _ => {
            return redirect_error(
                &state,
                &txn.redirect_uri,
                &txn.client_state,
                "access_denied",
                "the client is no longer registered",
            )
        }
    };
    let creds = match upstream_credentials(&state, txn.upstream_client_id.as_deref(), &client).await
    {
        Ok(c) => c,
        Err(e) => {
            return redirect_error(
                &state,
                &txn.redirect_uri,
                &txn.client_state,
                e.error.as_str(),
                &e.error_description,
            )
        }
    };
    let verifier = new_verifier();
    let sealed = state
        .vault
        .send(SealSecret {
            kind: UPSTREAM_PKCE.into(),
            id: state_id(&txn_state),
            plaintext: verifier.clone().into_bytes(),
        })
        .await;
    if !matches!(sealed, Ok(Ok(()))) {
        return redirect_error(
            &state,
            &txn.redirect_uri,
            &txn.client_state,
            "temporarily_unavailable",
            "the sign-in could not be stored",
        );
    }
    let location = state.upstream.authorize_url(
        &creds,
        txn_state.expose(),
        &challenge_of(&verifier),
        &txn.scopes,
        &state.config.callback_url(),
    );
    let mut res = found(&location);
    let _ = res.add_cookie(&cookies::binding_cookie(&state, &txn_state, &browser));
    res
}
