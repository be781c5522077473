//! `/admin/v1/stats`, `/admin/v1/janitor/run`, `/admin/v1/keys/rotate`.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::{unavailable, AdminIdentity, ApiError};
use crate::actors::janitor::{JanitorReport, LastJanitorRun, RunJanitor};
use crate::actors::registry::CountClients;
use crate::actors::vault::{GetVaultStatus, RotateKey, VaultError};
use crate::http::{allow, AppState};
use crate::storage::Tree;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/stats")
            .route(web::get().to(stats))
            .default_service(allow("GET")),
    )
    .service(
        web::resource("/janitor/run")
            .route(web::post().to(run_janitor))
            .default_service(allow("POST")),
    )
    .service(
        web::resource("/keys/rotate")
            .route(web::post().to(rotate_key))
            .default_service(allow("POST")),
    );
}

/// What a janitor run removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct JanitorRun {
    pub clients: usize,
    pub grants: usize,
    pub tokens: usize,
    pub codes: usize,
    pub transactions: usize,
    pub users: usize,
    pub duration_ms: u64,
    /// When it finished (Unix seconds).
    pub finished_at: i64,
}

impl JanitorRun {
    fn new(r: JanitorReport, at: i64) -> Self {
        Self {
            clients: r.clients,
            grants: r.grants,
            tokens: r.tokens,
            codes: r.codes,
            transactions: r.transactions,
            users: r.users,
            duration_ms: r.duration_ms,
            finished_at: at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"clients": 12, "grants": 9, "tokens": 30, "users": 7, "pending_sign_ins": 2, "sealed_secrets": 3, "storage_mode": "FILE_ENCRYPTED",
    "encryption_enabled": true, "key_id": "3fa2c1d9", "store_size_bytes": 524288, "janitor_last_run": null}))]
pub struct Stats {
    pub clients: usize,
    pub grants: usize,
    pub tokens: usize,
    pub users: usize,
    /// Sign-ins between the authorization request and the callback.
    pub pending_sign_ins: usize,
    /// Secrets in the Vault besides users' credentials: custom upstream
    /// client secrets and the upstream PKCE verifiers of pending sign-ins.
    pub sealed_secrets: usize,
    pub storage_mode: String,
    pub encryption_enabled: bool,
    pub key_id: Option<String>,
    pub store_size_bytes: u64,
    pub janitor_last_run: Option<JanitorRun>,
}

#[utoipa::path(get, path = "/admin/v1/stats", tag = "admin: operations", security(("admin_token" = [])),
    responses((status = 200, body = Stats), (status = 401, body = ApiError)))]
pub async fn stats(
    admin: AdminIdentity,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let clients = state.registry.send(CountClients).await;
    let clients = clients
        .map_err(unavailable("stats"))?
        .map_err(unavailable("stats"))?;
    let vault = state.vault.send(GetVaultStatus).await;
    let vault = vault.map_err(unavailable("stats"))?;
    let counts = store_counts(&state).await?;
    let last = state.janitor.send(LastJanitorRun).await;
    let last = last.map_err(unavailable("stats"))?;
    admin.audit("stats", "server");
    Ok(HttpResponse::Ok().json(Stats {
        clients,
        grants: counts.grants,
        tokens: counts.tokens,
        users: counts.users,
        pending_sign_ins: counts.pending_sign_ins,
        sealed_secrets: counts.sealed_secrets,
        storage_mode: state.config.storage.mode.as_str().to_owned(),
        encryption_enabled: vault.encryption_enabled,
        key_id: vault.key_id,
        store_size_bytes: counts.size_on_disk,
        janitor_last_run: last.map(|(at, r)| JanitorRun::new(r, at)),
    }))
}

/// Entries per tree, and bytes on disk.
struct StoreCounts {
    grants: usize,
    tokens: usize,
    users: usize,
    pending_sign_ins: usize,
    sealed_secrets: usize,
    size_on_disk: u64,
}

/// Counts the store off the async workers; a tree that cannot be counted
/// counts 0, logged.
async fn store_counts(state: &AppState) -> Result<StoreCounts, ApiError> {
    let store = state.store.clone();
    web::block(move || {
        let n = |tree| {
            store.len(tree).unwrap_or_else(|e| {
                tracing::warn!(?tree, error = %e, "stats: a tree could not be counted");
                0
            })
        };
        StoreCounts {
            grants: n(Tree::Grants),
            tokens: n(Tree::Tokens),
            users: n(Tree::Users),
            pending_sign_ins: n(Tree::Transactions),
            sealed_secrets: n(Tree::Secrets),
            size_on_disk: store.size_on_disk(),
        }
    })
    .await
    .map_err(unavailable("stats"))
}

#[utoipa::path(post, path = "/admin/v1/janitor/run", tag = "admin: operations", security(("admin_token" = [])),
    responses((status = 200, description = "What the run removed", body = JanitorRun), (status = 401, body = ApiError)))]
pub async fn run_janitor(
    admin: AdminIdentity,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let report = state
        .janitor
        .send(RunJanitor)
        .await
        .map_err(unavailable("run_janitor"))?;
    admin.audit("run_janitor", "server");
    Ok(HttpResponse::Ok().json(JanitorRun::new(report, state.clock.now())))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyRotation {
    pub key_id: String,
    pub resealed: usize,
    pub already_current: usize,
    pub unreadable: usize,
    pub retired_keys: Vec<String>,
}

#[utoipa::path(post, path = "/admin/v1/keys/rotate", tag = "admin: operations", security(("admin_token" = [])),
    responses((status = 200, body = KeyRotation), (status = 401, body = ApiError),
        (status = 409, description = "This storage mode has no key to rotate", body = ApiError)))]
pub async fn rotate_key(
    admin: AdminIdentity,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let rotate = RotateKey {
        now: state.clock.now(),
    };
    let report = match state.vault.send(rotate).await {
        Ok(Ok(report)) => report,
        Ok(Err(e @ (VaultError::Rotation(_) | VaultError::NoEncryption))) => {
            tracing::warn!(operation = "rotate_key", error = %e, "admin operation refused");
            let conflict = actix_web::http::StatusCode::CONFLICT;
            return Err(ApiError::new(conflict, "conflict", e.to_string()));
        }
        Ok(Err(e)) => return Err(unavailable("rotate_key")(e)),
        Err(e) => return Err(unavailable("rotate_key")(e)),
    };
    admin.audit("rotate_key", &report.new_key_id);
    Ok(HttpResponse::Ok().json(KeyRotation {
        key_id: report.new_key_id,
        resealed: report.resealed,
        already_current: report.already_current,
        unreadable: report.unreadable.len(),
        retired_keys: report.retired_keys,
    }))
}
