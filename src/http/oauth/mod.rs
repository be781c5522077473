//! The OAuth endpoints of the login flow: authorize (with consent), the
//! upstream callback, token, revoke and introspect.

mod answers;
mod authorize;
mod callback;
mod client_auth;
mod cookies;
mod introspect;
mod token;

use actix_web::web;

use super::cors::CorsPolicy;

// Parsers the fuzz targets drive directly.
pub use answers::with_query;
pub use client_auth::parse_form_body;

/// The sign-in's browser endpoints answer no cross-origin script; token
/// and revocation do (`cors`).
pub fn configure(cfg: &mut web::ServiceConfig, cors: &CorsPolicy) {
    cfg.configure(authorize::configure)
        .configure(callback::configure)
        .configure(|c| token::configure(c, cors))
        .configure(|c| introspect::configure(c, cors));
}
