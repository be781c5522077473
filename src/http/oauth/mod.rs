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

// Parsers the fuzz targets drive directly.
pub use answers::with_query;
pub use client_auth::parse_form_body;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(authorize::configure)
        .configure(callback::configure)
        .configure(token::configure)
        .configure(introspect::configure);
}
