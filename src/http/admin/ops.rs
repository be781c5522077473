//! `/admin/v1/stats`, `/admin/v1/janitor/run`, `/admin/v1/keys/rotate`.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::{unavailable, AdminIdentity, ApiError};
use crate::actors::janitor::{JanitorReport, LastJanitorRun, RunJanitor};
use crate::actors::registry::CountClients;
use crate::actors::vault::{GetVaultStatus, RotateKey, VaultError};
use crate::http::AppState;
use crate::storage::Tree;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/stats", web::get().to(stats))
        .route("/janitor/run", web::post().to(run_janitor))
        .route("/keys/rotate", web::post().to(rotate_key));
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
    let clients = state
        .registry
        .send(CountClients)
        .await
        .map_err(unavailable("stats"))?
        .map_err(unavailable("stats"))?;
    let vault = state
        .vault
        .send(GetVaultStatus)
        .await
        .map_err(unavailable("stats"))?;
    let store = state.store.clone();
    let (grants, tokens, users, pending_sign_ins, sealed_secrets, size) = web::block(move || {
        let n = |t| store.len(t).unwrap_or(0);
        (
            n(Tree::Grants),
            n(Tree::Tokens),
            n(Tree::Users),
            n(Tree::Transactions),
            n(Tree::Secrets),
            store.size_on_disk(),
        )
    })
    .await
    .map_err(unavailable("stats"))?;
    let last = state
        .janitor
        .send(LastJanitorRun)
        .await
        .map_err(unavailable("stats"))?;
    admin.audit("stats", "server");
    Ok(HttpResponse::Ok().json(Stats {
        clients,
        grants,
        tokens,
        users,
        pending_sign_ins,
        sealed_secrets,
        storage_mode: state.config.storage_mode.as_str().to_owned(),
        encryption_enabled: vault.encryption_enabled,
        key_id: vault.key_id,
        store_size_bytes: size,
        janitor_last_run: last.map(|(at, r)| JanitorRun::new(r, at)),
    }))
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
    let report = match state
        .vault
        .send(RotateKey {
            now: state.clock.now(),
        })
        .await
        .map_err(unavailable("rotate_key"))?
    {
        Ok(r) => r,
        Err(e @ (VaultError::Rotation(_) | VaultError::NoEncryption)) => {
            return Err(ApiError::new(
                actix_web::http::StatusCode::CONFLICT,
                "conflict",
                e.to_string(),
            ))
        }
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
