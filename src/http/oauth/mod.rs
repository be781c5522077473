//! The OAuth endpoints of the login flow: authorize (with consent), the
//! upstream callback, token, revoke and introspect.

mod answers;
mod authorize;
mod callback;
mod client_auth;
mod cookies;
mod introspect;
mod token;
pub(crate) use actix_web::web;

pub use client_auth::parse_form_body;

use super::errors::OAuthError;
use super::AppState;
use crate::actors::registry::ClientView;
use crate::service::session::{self, CredentialsError};
use crate::upstream::Credentials;

pub use crate::actors::vault::{UPSTREAM_CLIENT_SECRET, UPSTREAM_PKCE};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(authorize::configure)
        .configure(callback::configure)
        .configure(token::configure)
        .configure(introspect::configure);
}

/// The upstream client a login uses (see
/// [`crate::service::session::upstream_credentials`]), its failure as an
/// OAuth error.
pub async fn upstream_credentials(
    state: &AppState,
    transaction_client_id: Option<&str>,
    client: &ClientView,
) -> Result<Credentials, OAuthError> {
    session::upstream_credentials(state, transaction_client_id, client)
        .await
        .map_err(credentials_error)
}

/// The OAuth error answering a [`CredentialsError`].
pub fn credentials_error(e: CredentialsError) -> OAuthError {
    OAuthError::from(crate::service::ServiceError::from(e))
}
