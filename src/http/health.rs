//! Health: the source document's `/health/oauth`, plus liveness and readiness.

use actix_web::{web, HttpResponse};
use serde::Serialize;

use super::{allow, AppState};
use crate::actors::registry::{CountClients, PingStore};
use crate::actors::vault::GetVaultStatus;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/health/oauth")
            .route(web::get().to(oauth))
            .default_service(allow("GET")),
    )
    .service(
        web::resource("/health/live")
            .route(web::get().to(live))
            .default_service(allow("GET")),
    )
    .service(
        web::resource("/health/ready")
            .route(web::get().to(ready))
            .default_service(allow("GET")),
    );
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Endpoints {
    discovery: bool,
    registration: bool,
    authorization: bool,
    token: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct OAuthHealth {
    status: &'static str,
    proxy_clients: Option<usize>,
    storage_mode: &'static str,
    encryption_enabled: bool,
    encryption_key_id: Option<String>,
    google_oauth_configured: bool,
    upstream_provider: String,
    endpoints_available: Endpoints,
}

async fn oauth(state: web::Data<AppState>) -> HttpResponse {
    let count = match state.registry.send(CountClients).await {
        Ok(Ok(n)) => Some(n),
        _ => None,
    };
    let store_ok = matches!(state.registry.send(PingStore).await, Ok(Ok(())));
    let vault = state.vault.send(GetVaultStatus).await.ok();
    let body = OAuthHealth {
        status: if store_ok && count.is_some() {
            "healthy"
        } else {
            "unhealthy"
        },
        proxy_clients: count,
        storage_mode: state.config.storage.mode.as_str(),
        encryption_enabled: vault.as_ref().is_some_and(|v| v.encryption_enabled),
        encryption_key_id: vault.and_then(|v| v.key_id),
        google_oauth_configured: state.config.upstream.google.is_some(),
        upstream_provider: state.config.upstream.provider.as_str().to_owned(),
        endpoints_available: Endpoints {
            discovery: true,
            registration: true,
            authorization: true,
            token: true,
        },
    };
    let mut res = if store_ok {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    res.insert_header(("Cache-Control", "no-store")).json(body)
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "alive"}))
}

async fn ready(state: web::Data<AppState>) -> HttpResponse {
    match state.registry.send(PingStore).await {
        Ok(Ok(())) => HttpResponse::Ok().json(serde_json::json!({"status": "ready"})),
        Ok(Err(e)) => HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"status": "not_ready", "reason": e.to_string()})),
        Err(_) => HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"status": "not_ready", "reason": "registry unavailable"})),
    }
}
