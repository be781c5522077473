//! The HTTP front end. Handlers are thin: extract, parse into domain types,
//! send one message, render the reply.

pub mod admin;
pub mod client_addr;
pub mod connections;
pub mod cors;
pub mod errors;
mod gateway;
mod health;
mod metrics_endpoint;
pub mod middleware;
pub mod oauth;
pub mod openapi;
pub mod redirect;
mod register;
mod wellknown;

use std::sync::Arc;

use actix::Addr;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::service::Services;
use crate::upstream::dev::DevProvider;
use errors::OAuthError;

/// What every handler can reach: the flows ([`Services`], which it derefs
/// to) and what only HTTP needs.
#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    /// The built-in development provider, when `UPSTREAM_PROVIDER=dev`.
    pub dev: Option<Arc<DevProvider>>,
    pub admin: admin::AdminToken,
    pub janitor: Addr<crate::actors::janitor::Janitor>,
    /// How big the store is (the metrics gauges, the operators' stats):
    /// sizes only, no record.
    pub store: crate::storage::Sizes,
    /// Client for the upstream MCP server (no redirects, connect time-out).
    pub gateway_http: reqwest::Client,
    /// The public listener's certificate, with HTTPS (readiness reports it).
    pub certificate: Option<Arc<crate::tls::ReloadableCert>>,
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}

/// Registers every route of the public surface.
pub fn configure(cfg: &mut web::ServiceConfig, state: AppState) {
    let max_body = state.config.server.max_body_bytes;
    let admin_here = state.config.admin.listen.is_empty();
    let config = state.config.clone();
    let base_path = state.config.base_path().to_owned();
    let cors = cors::CorsPolicy::new(&state.config.server.cors_allowed_origins);
    if let Some(dev) = state.dev.clone() {
        cfg.configure(|c| crate::upstream::dev::configure(c, dev));
    }
    cfg.app_data(web::Data::new(state))
        .app_data(errors::json_config(max_body))
        .app_data(web::PayloadConfig::new(max_body))
        .app_data(web::FormConfig::default().limit(max_body))
        .configure(|c| wellknown::configure(c, &base_path, &cors))
        .configure(|c| register::configure(c, &cors))
        .configure(|c| oauth::configure(c, &cors))
        .configure(health::configure)
        .configure(metrics_endpoint::configure)
        .configure(openapi::configure)
        .configure(|c| gateway::configure(c, &config, &cors))
        .configure(|c| {
            if admin_here {
                admin::configure(c)
            }
        })
        .default_service(web::to(not_found));
}

async fn not_found() -> HttpResponse {
    OAuthError::not_found().into_response()
}

/// The default of a resource this server serves: a request with another
/// method is answered 405 with `Allow` naming the methods it takes (RFC
/// 9110 §15.5.6), in the RFC 6749 error shape.
pub(crate) fn allow(methods: &'static str) -> actix_web::Route {
    web::to(move || async move {
        let mut res = OAuthError::method_not_allowed().into_response();
        res.headers_mut().insert(
            actix_web::http::header::ALLOW,
            actix_web::http::header::HeaderValue::from_static(methods),
        );
        res
    })
}

/// The token of an `Authorization: Bearer …` header (scheme in any case,
/// surrounding space trimmed; an empty token is returned as such).
pub(crate) fn bearer(req: &HttpRequest) -> Option<crate::domain::SecretToken> {
    let value = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| crate::domain::SecretToken::presented(token.trim()))
}

/// The client's address (through trusted proxies, see [`client_addr`]).
pub(crate) fn client_ip(req: &HttpRequest) -> String {
    let trusted = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.config.server.trusted_proxies.as_slice())
        .unwrap_or(&[]);
    client_addr::client_ip(req, trusted)
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// The admin API alone, for its own listener (`admin.listen`).
pub fn configure_admin(cfg: &mut web::ServiceConfig, state: AppState) {
    let max_body = state.config.server.max_body_bytes;
    cfg.app_data(web::Data::new(state))
        .app_data(web::JsonConfig::default().limit(max_body))
        .configure(admin::configure)
        .default_service(web::to(not_found));
}
