//! `GET /oauth/callback` (alias `/oauth2callback`): the upstream sends the
//! browser back here. Drawbridge exchanges the upstream code with the real
//! credentials, keeps the user's upstream tokens in the Vault, and answers
//! the client with its own single-use code. Only the browser that approved
//! the consent can finish a sign-in (its binding cookie, see
//! [`super::cookies`]); the cookie and the sign-in's upstream PKCE verifier
//! are removed whatever the outcome.

use actix_web::{web, HttpRequest, HttpResponse};

use super::authorize::state_id;
use super::{cookies, found, redirect_error, upstream_credentials, with_query, UPSTREAM_PKCE};
use crate::actors::registry::{GetClient, RecordClientUse};
use crate::actors::token_broker::{AuthTransaction, BrokerError, CompleteTransaction, IssueCode};
use crate::actors::vault::{
    DeleteSecrets, LoadUserCredentials, OpenSecret, StoreUserCredentials, UpstreamTokens,
    UserCredentials, UserRef,
};
use crate::audit::AuditEvent;
use crate::domain::{ClientId, SecretToken};
use crate::http::{client_ip, AppState};
use crate::metrics::METRICS;
use crate::pages::error_page;
use crate::upstream::{Identity, UpstreamError, UpstreamTokenSet};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/oauth/callback", web::get().to(callback))
        .route("/oauth2callback", web::get().to(callback));
}

#[derive(serde::Deserialize)]
struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

async fn callback(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: Option<web::Query<CallbackQuery>>,
) -> HttpResponse {
    let Some(query) = query else {
        return error_page(400, "invalid_request", "The callback is malformed.");
    };
    let Some(raw_state) = query.state.as_deref().filter(|s| !s.is_empty()) else {
        return error_page(400, "invalid_request", "The callback has no state.");
    };
    let now = state.clock.now();
    let txn_state = SecretToken::presented(raw_state);
    let ip = client_ip(&req);
    let taken = state
        .broker
        .send(CompleteTransaction {
            state: txn_state.clone(),
            browser: cookies::presented_binding(&state, &req, &txn_state),
            now,
        })
        .await;
    let mut res = match taken {
        Ok(Ok(txn)) => answer(&state, &query, &txn, &txn_state, &ip, now).await,
        Ok(Err(BrokerError::WrongBrowser(txn))) => {
            // Approved in another browser: someone else's sign-in link. The
            // transaction is gone; nothing goes to the client's redirect URI.
            forget_verifier(&state, &txn_state).await;
            AuditEvent::UpstreamCallback {
                client_id: &txn.client_id,
                ip: &ip,
                user: None,
                reason: Some(WRONG_BROWSER),
            }
            .emit();
            METRICS.logins.with_label_values(&[WRONG_BROWSER]).inc();
            error_page(
                403,
                "access_denied",
                "This sign-in was approved in another browser (or before a server upgrade), so it cannot finish in this one. If you did not start it, close this page. Otherwise start the sign-in again from your application, in this browser.",
            )
        }
        Ok(Err(_)) => error_page(
            400,
            "invalid_request",
            "This sign-in expired or was already completed. Start again from your application.",
        ),
        Err(_) => error_page(
            503,
            "temporarily_unavailable",
            "The server is busy; start the sign-in again.",
        ),
    };
    let _ = res.add_cookie(&cookies::binding_removal(&state, &txn_state));
    res
}

/// The audit and metric outcome of a callback from the wrong browser.
const WRONG_BROWSER: &str = "browser_mismatch";

/// The callback's answer once its transaction was taken from the right
/// browser: the client's redirect with a code, or with the RFC error.
async fn answer(
    state: &AppState,
    query: &CallbackQuery,
    txn: &AuthTransaction,
    txn_state: &SecretToken,
    ip: &str,
    now: i64,
) -> HttpResponse {
    let verifier = state
        .vault
        .read(OpenSecret {
            kind: UPSTREAM_PKCE.into(),
            id: state_id(txn_state),
        })
        .await;
    let verifier = match verifier {
        Ok(Ok(Some(v))) => Some(String::from_utf8(v).unwrap_or_default()),
        _ => None,
    };
    // The verifier is single use, whatever happens next: its deletion runs
    // alongside the sign-in (and is durable before the answer goes out).
    let (res, ()) = futures_util::future::join(
        respond(state, query, txn, txn_state, verifier, ip, now),
        forget_verifier(state, txn_state),
    )
    .await;
    res
}

async fn respond(
    state: &AppState,
    query: &CallbackQuery,
    txn: &AuthTransaction,
    txn_state: &SecretToken,
    verifier: Option<String>,
    ip: &str,
    now: i64,
) -> HttpResponse {
    let fail = |error: &str, description: &str| {
        AuditEvent::UpstreamCallback {
            client_id: &txn.client_id,
            ip,
            user: None,
            reason: Some(error),
        }
        .emit();
        METRICS.logins.with_label_values(&[error]).inc();
        redirect_error(
            state,
            &txn.redirect_uri,
            &txn.client_state,
            error,
            description,
        )
    };
    if let Some(error) = &query.error {
        return if error == "access_denied" {
            fail(
                "access_denied",
                "the user declined at the identity provider",
            )
        } else {
            fail("server_error", "the identity provider reported an error")
        };
    }
    let Some(code) = query.code.as_deref().filter(|c| !c.is_empty()) else {
        return fail("server_error", "the identity provider returned no code");
    };
    let verifier = match verifier {
        Some(v) => v,
        None => {
            return fail(
                "temporarily_unavailable",
                "the sign-in's verifier could not be read; try again",
            )
        }
    };
    match finish(state, txn, txn_state, &verifier, code, now).await {
        Ok((location, email)) => {
            AuditEvent::UpstreamCallback {
                client_id: &txn.client_id,
                ip,
                user: email.as_deref(),
                reason: None,
            }
            .emit();
            METRICS.logins.with_label_values(&["ok"]).inc();
            found(&location)
        }
        Err((error, description)) => fail(error, &description),
    }
}

/// Deletes the sign-in's upstream PKCE verifier from the Vault.
async fn forget_verifier(state: &AppState, txn_state: &SecretToken) {
    let deleted = state
        .vault
        .send(DeleteSecrets {
            kind: UPSTREAM_PKCE.into(),
            ids: vec![state_id(txn_state)],
        })
        .await;
    if !matches!(deleted, Ok(Ok(_))) {
        tracing::warn!("a used upstream PKCE verifier could not be deleted now; the janitor deletes it on its next run");
    }
}

/// Exchanges the upstream code and mints Drawbridge's; answers the client's
/// redirect location, or the RFC error to send it.
async fn finish(
    state: &AppState,
    txn: &AuthTransaction,
    txn_state: &SecretToken,
    verifier: &str,
    code: &str,
    now: i64,
) -> Result<(String, Option<String>), (&'static str, String)> {
    let unavailable = |what: &str| ("temporarily_unavailable", format!("{what}; try again"));
    let client = match state
        .registry
        .read(GetClient {
            client_id: txn.client_id.clone(),
            now,
        })
        .await
    {
        Ok(Ok(Some(c))) => c,
        Ok(Ok(None)) => return Err(("access_denied", "the client is no longer registered".into())),
        _ => return Err(unavailable("the server could not look up the client")),
    };
    let creds = upstream_credentials(state, txn.upstream_client_id.as_deref(), &client)
        .await
        .map_err(|e| (e.error.as_str(), e.error_description))?;
    let tokens = state
        .upstream
        .exchange_code(&creds, code, verifier, &state.config.callback_url())
        .await
        .map_err(upstream_failure)?;
    let identity = state
        .upstream
        .identity(&creds, &tokens, txn_state.expose())
        .await
        .map_err(upstream_failure)?;
    let user = store_user(state, &identity, &tokens, now)
        .await
        .map_err(|_| unavailable("the credentials could not be stored"))?;
    let issued = state
        .broker
        .send(IssueCode {
            transaction: txn.clone(),
            user,
            now,
        })
        .await;
    let Ok(Ok(code)) = issued else {
        return Err(unavailable("the authorization code could not be stored"));
    };
    if let Some(id) = ClientId::parse(&txn.client_id) {
        let _ = state
            .registry
            .send(RecordClientUse { client_id: id, now })
            .await;
    }
    let issuer = state.config.issuer();
    let mut params = vec![("code", code.expose()), ("iss", issuer.as_str())];
    if !txn.client_state.is_empty() {
        params.push(("state", &txn.client_state));
    }
    let location = with_query(&txn.redirect_uri, &params);
    Ok((location, identity.verified_email().map(str::to_owned)))
}

fn upstream_failure(e: UpstreamError) -> (&'static str, String) {
    tracing::warn!(error = %e, "upstream sign-in step failed");
    match e {
        UpstreamError::Unavailable(_) => (
            "temporarily_unavailable",
            "the identity provider is unavailable; try again".into(),
        ),
        UpstreamError::Rejected { error, .. } if error == "access_denied" => (
            "access_denied",
            "the identity provider refused access".into(),
        ),
        UpstreamError::Rejected { .. } => (
            "server_error",
            "the identity provider rejected the sign-in".into(),
        ),
    }
}

/// Keeps the user's upstream tokens under their issuer and subject, keeping
/// a refresh token from an earlier sign-in when the provider sends none
/// this time. The email is kept with whether the issuer verified it; only
/// a verified one ever names the user.
async fn store_user(
    state: &AppState,
    identity: &Identity,
    tokens: &UpstreamTokenSet,
    now: i64,
) -> Result<String, ()> {
    let load = |issuer: &str| {
        state.vault.read(LoadUserCredentials(UserRef::Subject {
            issuer: issuer.to_owned(),
            sub: identity.sub.clone(),
        }))
    };
    let mut previous = load(&identity.issuer)
        .await
        .ok()
        .and_then(|r| r.ok())
        .flatten();
    if previous.is_none() {
        // A record from before issuers were recorded (the Vault moves it).
        previous = load("")
            .await
            .ok()
            .and_then(|r| r.ok())
            .flatten()
            .filter(|p| p.issuer.is_empty() || p.issuer == identity.issuer);
    }
    let refresh_token = tokens.refresh_token.clone().or_else(|| {
        previous
            .as_ref()
            .and_then(|p| p.tokens.refresh_token.clone())
    });
    let creds = UserCredentials {
        uid: previous.as_ref().map(|p| p.uid.clone()).unwrap_or_default(),
        issuer: identity.issuer.clone(),
        sub: identity.sub.clone(),
        email: identity.email.clone(),
        email_verified: identity.email_verified,
        tokens: UpstreamTokens {
            access_token: tokens.access_token.clone(),
            refresh_token,
            expires_at: tokens.expires_in.map(|s| now + s as i64),
            scopes: tokens.scopes.clone(),
            id_token: tokens.id_token.clone(),
        },
        created_at: previous.as_ref().map_or(now, |p| p.created_at),
        updated_at: now,
    };
    match state.vault.send(StoreUserCredentials(creds)).await {
        Ok(Ok(uid)) => Ok(uid),
        _ => Err(()),
    }
}
