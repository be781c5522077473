//! The OAuth endpoints of the login flow: authorize (with consent), the
//! upstream callback, token, revoke and introspect.

mod authorize;
mod callback;
mod client_auth;
mod cookies;
mod introspect;
mod token;
pub(crate) use actix_web::web;
use url::Url;

pub use client_auth::parse_form_body;

use super::errors::OAuthError;
use super::AppState;
use crate::actors::registry::ClientView;
use crate::actors::vault::OpenSecret;
use crate::upstream::Credentials;

pub use crate::actors::vault::{UPSTREAM_CLIENT_SECRET, UPSTREAM_PKCE};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(authorize::configure)
        .configure(callback::configure)
        .configure(token::configure)
        .configure(introspect::configure);
}

/// `uri` with `params` added to its query (the client's own query kept).
pub fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    match Url::parse(uri) {
        Ok(mut url) => {
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
            }
            url.into()
        }
        Err(_) => uri.to_owned(),
    }
}

/// An authorization error sent back to the client's redirect URI
/// (RFC 6749 §4.1.2.1) with its state and our issuer (RFC 9207).
pub fn redirect_error(
    state: &AppState,
    redirect_uri: &str,
    client_state: &str,
    error: &str,
    description: &str,
) -> actix_web::HttpResponse {
    let issuer = state.config.issuer();
    let mut params = vec![
        ("error", error),
        ("error_description", description),
        ("iss", issuer.as_str()),
    ];
    if !client_state.is_empty() {
        params.push(("state", client_state));
    }
    found(&with_query(redirect_uri, &params))
}

pub fn found(location: &str) -> actix_web::HttpResponse {
    actix_web::HttpResponse::Found()
        .insert_header(("Location", location))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

/// The upstream client a login uses: the transaction's custom client id
/// (public, PKCE only), else the client's registered custom client (secret
/// from the Vault), else the operator's default.
pub async fn upstream_credentials(
    state: &AppState,
    transaction_client_id: Option<&str>,
    client: &ClientView,
) -> Result<Credentials, OAuthError> {
    if let Some(id) = transaction_client_id {
        return Ok(Credentials {
            client_id: id.to_owned(),
            client_secret: None,
        });
    }
    if let Some(id) = &client.metadata.upstream_client_id {
        let secret = state
            .vault
            .read(OpenSecret { kind: UPSTREAM_CLIENT_SECRET.into(), id: client.client_id.clone() })
            .await
            .map_err(OAuthError::unavailable)?
            .map_err(|e| {
                tracing::error!(error = %e, client_id = %client.client_id, "custom upstream client secret unreadable");
                OAuthError::server_error()
            })?;
        let secret = secret.and_then(|s| String::from_utf8(s).ok());
        return Ok(Credentials {
            client_id: id.clone(),
            client_secret: secret,
        });
    }
    state
        .upstream
        .default_credentials()
        .cloned()
        .ok_or_else(|| {
            OAuthError::new(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "no upstream client is configured (GOOGLE_CLIENT_ID / GOOGLE_OAUTH_CREDENTIALS_FILE)",
        )
        })
}
