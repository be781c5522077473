//! The sign-in's cookies, built with the `cookie` crate (never formatted by
//! hand):
//! - the consent form's CSRF cookie (`dbc_…`, `Path=/oauth/consent` under
//!   `BASE_URL`'s path,
//!   `SameSite=Strict`): a forged form post from another site fails;
//! - the browser binding (`drawbridge_signin_…`, `__Host-` on https), set
//!   with the Approve answer and required at `/oauth/callback`: a sign-in
//!   link approved in one browser and opened in another is refused, so an
//!   attacker cannot approve consent themselves and have a victim finish the
//!   sign-in into the attacker's client. `SameSite=Lax` so it comes back
//!   with the top-level redirect from the identity provider.
//!
//! - the returning browser (`drawbridge_user`, `__Host-` on https), set
//!   after a completed sign-in: the user's id and an expiry, signed by the
//!   service layer, sent back with the next authorization request so that
//!   a step-up's consent page lists only the new scopes as new
//!   (`SameSite=Lax`: the authorization request is a top-level navigation
//!   from the client's site).
//!
//! Each sign-in has its own cookie names (from a hash of its state), so two
//! sign-ins in one browser do not overwrite each other.

use actix_web::cookie::{time::Duration, Cookie, SameSite};
use actix_web::HttpRequest;

use crate::domain::SecretToken;
use crate::http::AppState;

/// Where the consent form posts (under `BASE_URL`'s path).
pub const CONSENT_PATH: &str = "/oauth/consent";

fn https(state: &AppState) -> bool {
    state.config.server.base_url.scheme() == "https"
}

/// 16 hex digits of the state's hash: distinct per sign-in, reveals nothing.
fn short_id(txn_state: &SecretToken) -> String {
    crate::crypto::hex(&txn_state.hash().as_bytes()[..8])
}

fn consent_name(txn_state: &SecretToken) -> String {
    format!("dbc_{}", short_id(txn_state))
}

fn binding_name(state: &AppState, txn_state: &SecretToken) -> String {
    let prefix = if https(state) { "__Host-" } else { "" };
    format!("{prefix}drawbridge_signin_{}", short_id(txn_state))
}

/// Binds the consent form to the browser it was shown in.
pub fn consent_cookie(
    state: &AppState,
    txn_state: &SecretToken,
    csrf: &SecretToken,
) -> Cookie<'static> {
    Cookie::build(consent_name(txn_state), csrf.expose().to_owned())
        .path(state.config.public_path(CONSENT_PATH))
        .max_age(Duration::seconds(state.config.tokens.transaction_ttl))
        .http_only(true)
        .secure(https(state))
        .same_site(SameSite::Strict)
        .finish()
}

/// The consent form's cookie, as the browser sent it back.
pub fn presented_consent(req: &HttpRequest, txn_state: &SecretToken) -> Option<SecretToken> {
    req.cookie(&consent_name(txn_state))
        .map(|c| SecretToken::presented(c.value()))
}

/// Binds an approved sign-in to this browser until its callback.
pub fn binding_cookie(
    state: &AppState,
    txn_state: &SecretToken,
    value: &SecretToken,
) -> Cookie<'static> {
    Cookie::build(binding_name(state, txn_state), value.expose().to_owned())
        .path("/")
        .max_age(Duration::seconds(state.config.tokens.transaction_ttl))
        .http_only(true)
        .secure(https(state))
        .same_site(SameSite::Lax)
        .finish()
}

/// Removes the binding once the callback used it (same name and attributes,
/// empty and already expired).
pub fn binding_removal(state: &AppState, txn_state: &SecretToken) -> Cookie<'static> {
    let mut cookie = binding_cookie(state, txn_state, &SecretToken::presented(""));
    cookie.make_removal();
    cookie
}

/// The binding cookie, as the browser sent it to the callback.
pub fn presented_binding(
    state: &AppState,
    req: &HttpRequest,
    txn_state: &SecretToken,
) -> Option<SecretToken> {
    req.cookie(&binding_name(state, txn_state))
        .map(|c| SecretToken::presented(c.value()))
        .filter(|t| !t.expose().is_empty())
}

fn returning_name(state: &AppState) -> String {
    let prefix = if https(state) { "__Host-" } else { "" };
    format!("{prefix}drawbridge_user")
}

/// Remembers the user who signed in with this browser (a value signed by
/// [`crate::service::signin`]) for `max_age` seconds.
pub fn returning_cookie(state: &AppState, value: String, max_age: i64) -> Cookie<'static> {
    Cookie::build(returning_name(state), value)
        .path("/")
        .max_age(Duration::seconds(max_age))
        .http_only(true)
        .secure(https(state))
        .same_site(SameSite::Lax)
        .finish()
}

/// The returning-browser cookie, as the browser sent it.
pub fn presented_returning(state: &AppState, req: &HttpRequest) -> Option<String> {
    req.cookie(&returning_name(state))
        .map(|c| c.value().to_owned())
}
