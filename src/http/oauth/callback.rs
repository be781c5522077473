//! `GET /oauth/callback` (alias `/oauth2callback`): the upstream sends the
//! browser back here. Drawbridge exchanges the upstream code with the real
//! credentials, keeps the user's upstream tokens in the Vault, and answers
//! the client with its own single-use code.

use actix_web::{web, HttpRequest, HttpResponse};

use super::authorize::state_id;
use super::{found, redirect_error, upstream_credentials, with_query, UPSTREAM_PKCE};
use crate::actors::registry::{GetClient, RecordClientUse};
use crate::actors::token_broker::{AuthTransaction, CompleteTransaction, IssueCode};
use crate::actors::vault::{
    LoadUserCredentials, OpenSecret, StoreUserCredentials, UpstreamTokens, UserCredentials, UserRef,
};
use crate::audit::AuditEvent;
use crate::domain::{ClientId, SecretToken};
use crate::http::pages::error_page;
use crate::http::{client_ip, AppState};
use crate::metrics::METRICS;
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
    let txn =
        match state
            .broker
            .send(CompleteTransaction {
                state: txn_state.clone(),
                now,
            })
            .await
        {
            Ok(Ok(t)) => t,
            Ok(Err(_)) => return error_page(
                400,
                "invalid_request",
                "This sign-in expired or was already completed. Start again from your application.",
            ),
            Err(_) => {
                return error_page(
                    503,
                    "temporarily_unavailable",
                    "The server is busy; start the sign-in again.",
                )
            }
        };
    let ip = client_ip(&req);
    let fail = |error: &str, description: &str| {
        AuditEvent::UpstreamCallback {
            client_id: &txn.client_id,
            ip: &ip,
            user: None,
            reason: Some(error),
        }
        .emit();
        METRICS.logins.with_label_values(&[error]).inc();
        redirect_error(
            &state,
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
    match finish(&state, &txn, &txn_state, code, now).await {
        Ok((location, email)) => {
            AuditEvent::UpstreamCallback {
                client_id: &txn.client_id,
                ip: &ip,
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

/// Exchanges the upstream code and mints Drawbridge's; answers the client's
/// redirect location, or the RFC error to send it.
async fn finish(
    state: &AppState,
    txn: &AuthTransaction,
    txn_state: &SecretToken,
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
        .map_err(|e| (e.error, e.error_description))?;
    let verifier = match state
        .vault
        .read(OpenSecret {
            kind: UPSTREAM_PKCE.into(),
            id: state_id(txn_state),
        })
        .await
    {
        Ok(Ok(Some(v))) => String::from_utf8(v).unwrap_or_default(),
        _ => return Err(unavailable("the sign-in's verifier could not be read")),
    };
    let tokens = state
        .upstream
        .exchange_code(&creds, code, &verifier, &state.config.callback_url())
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
