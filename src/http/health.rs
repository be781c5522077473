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

/// Ready when the store answers and, with HTTPS, a certificate clients
/// accept is in service (not ACME's stand-in, not expired); the body says
/// the certificate's state either way.
async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let certificate = state.certificate.as_deref().map(certificate_state);
    // The store is checked by a read through the Registry: with
    // `postgres`, a round trip to the shared database.
    let mut body = serde_json::json!({
        "status": "ready",
        "storage": {"backend": state.config.storage.backend.as_str()},
    });
    if let Some(c) = &certificate {
        body["certificate"] = serde_json::to_value(c).unwrap_or_default();
    }
    let reason = match state.registry.send(PingStore).await {
        Ok(Ok(())) => match &certificate {
            Some(c) if c.state == "pending" => Some("no certificate issued yet".to_owned()),
            Some(c) if c.state == "expired" => Some("the certificate has expired".to_owned()),
            _ => None,
        },
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some("registry unavailable".to_owned()),
    };
    let Some(reason) = reason else {
        return HttpResponse::Ok().json(body);
    };
    body["status"] = "not_ready".into();
    body["reason"] = reason.into();
    HttpResponse::ServiceUnavailable().json(body)
}

/// The served certificate as readiness reports it.
#[derive(Serialize)]
struct CertificateState {
    /// `valid`, `expiring` (under 14 days left), `expired`, or `pending`
    /// (ACME's stand-in until the first certificate is issued).
    state: &'static str,
    not_after: i64,
    days_left: i64,
}

fn certificate_state(cert: &crate::tls::ReloadableCert) -> CertificateState {
    let loaded = cert.loaded();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let days_left = loaded.days_left(now);
    let state = if cert.is_placeholder() {
        "pending"
    } else if loaded.expired_at(now) {
        "expired"
    } else if days_left < 14 {
        "expiring"
    } else {
        "valid"
    };
    CertificateState {
        state,
        not_after: loaded.not_after,
        days_left,
    }
}
