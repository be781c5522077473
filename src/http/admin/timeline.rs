//! `/admin/v1/clients/{client_id}/timeline`: one client's recent steps, to
//! answer "why can't this client connect?" (docs/troubleshooting.md).

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::{failed, AdminIdentity, ApiError};
use crate::domain::timeline::{LastError, Step, Timeline, MAX_STEPS};
use crate::domain::ClientId;
use crate::http::{allow, AppState};
use crate::service::clients::admin;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/clients/{client_id}/timeline")
            .route(web::get().to(client_timeline))
            .default_service(allow("GET")),
    );
}

/// A client's connection timeline: its recent steps, oldest first, the
/// first and last calls through the gateway, and its last error. Never a
/// code, token, state, verifier or secret.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "client_id": "mcp_Xb3kq9Zt0fWm1YcVn2LpHA",
    "steps": [
        {"at": 1764201600, "step": "registered", "outcome": "ok", "count": 1, "since": 1764201600, "error": null, "error_description": null, "detail": "dynamic registration (none)"},
        {"at": 1764201605, "step": "authorize", "outcome": "ok", "count": 1, "since": 1764201605, "error": null, "error_description": null, "detail": "redirect host claude.ai; scopes openid email"},
        {"at": 1764201605, "step": "consent", "outcome": "shown", "count": 1, "since": 1764201605, "error": null, "error_description": null, "detail": null},
        {"at": 1764201611, "step": "consent", "outcome": "approved", "count": 1, "since": 1764201611, "error": null, "error_description": null, "detail": null},
        {"at": 1764201618, "step": "callback", "outcome": "ok", "count": 1, "since": 1764201618, "error": null, "error_description": null, "detail": "user sha256:5f1c0a9e3b7d2c41"},
        {"at": 1764201619, "step": "code_exchange", "outcome": "error", "count": 1, "since": 1764201619, "error": "invalid_grant", "error_description": "the code_verifier does not match the code_challenge", "detail": null},
        {"at": 1764201630, "step": "code_exchange", "outcome": "ok", "count": 1, "since": 1764201630, "error": null, "error_description": null, "detail": null},
        {"at": 1764201631, "step": "gateway_call", "outcome": "ok", "count": 1, "since": 1764201631, "error": null, "error_description": null, "detail": "first call"},
        {"at": 1764234000, "step": "refresh", "outcome": "ok", "count": 9, "since": 1764205230, "error": null, "error_description": null, "detail": null}
    ],
    "first_gateway_call_at": 1764201631,
    "last_gateway_call_at": 1764234060,
    "last_error": {"at": 1764201619, "step": "code_exchange", "error": "invalid_grant", "error_description": "the code_verifier does not match the code_challenge"},
    "max_steps": 50,
    "kept_days": 7
}))]
pub struct AdminTimeline {
    #[schema(value_type = String)]
    pub client_id: ClientId,
    /// Oldest first; consecutive repeats are one entry with a `count`.
    pub steps: Vec<AdminStep>,
    /// Unix seconds of the client's first call through the gateway.
    pub first_gateway_call_at: Option<i64>,
    /// Unix seconds of its last call (written at most once per
    /// `admin.timeline_gateway_interval_seconds`).
    pub last_gateway_call_at: Option<i64>,
    pub last_error: Option<AdminLastError>,
    /// The most steps kept.
    pub max_steps: usize,
    /// How many days of steps are kept (`admin.timeline_days`).
    pub kept_days: i64,
}

/// One step of a client's life.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminStep {
    /// Unix seconds of the step (of its last repeat when `count` > 1).
    pub at: i64,
    /// `registered`, `authorize`, `consent`, `callback`, `code_exchange`,
    /// `refresh`, `gateway_call` or `client_authentication`.
    pub step: &'static str,
    /// `ok`, `error`, or for consent `shown`, `approved`, `denied`.
    pub outcome: &'static str,
    /// How many times in a row it happened (refused gateway calls: at
    /// most one per interval is counted).
    pub count: u32,
    /// Unix seconds of the first of those times.
    pub since: i64,
    /// The RFC error code returned to the client (or, for a page shown to
    /// the person instead of a redirect, the error class).
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// A small hint: the redirect host, the scopes, the user (as
    /// `audit.user_field` allows), how the client was registered.
    pub detail: Option<String>,
}

/// The client's most recent error, whatever its step.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminLastError {
    pub at: i64,
    pub step: &'static str,
    pub error: String,
    pub error_description: Option<String>,
}

impl From<Step> for AdminStep {
    fn from(s: Step) -> Self {
        Self {
            at: s.at,
            step: s.kind.as_str(),
            outcome: s.outcome.as_str(),
            count: s.count,
            since: s.since,
            error: s.error,
            error_description: s.description,
            detail: s.detail,
        }
    }
}

impl From<LastError> for AdminLastError {
    fn from(e: LastError) -> Self {
        Self {
            at: e.at,
            step: e.kind.as_str(),
            error: e.error,
            error_description: e.description,
        }
    }
}

impl AdminTimeline {
    fn new(client_id: ClientId, t: Timeline, kept_days: i64) -> Self {
        Self {
            client_id,
            steps: t.steps.into_iter().map(AdminStep::from).collect(),
            first_gateway_call_at: t.first_gateway_call_at,
            last_gateway_call_at: t.last_gateway_call_at,
            last_error: t.last_error.map(AdminLastError::from),
            max_steps: MAX_STEPS,
            kept_days,
        }
    }
}

#[utoipa::path(get, path = "/admin/v1/clients/{client_id}/timeline", tag = "admin: clients",
    params(("client_id" = String, Path, description = "The client id: mcp_…, or a metadata document URL percent-encoded")),
    security(("admin_token" = [])),
    responses((status = 200, description = "The client's recent steps, oldest first (see docs/troubleshooting.md)", body = AdminTimeline),
        (status = 401, body = ApiError), (status = 404, body = ApiError), (status = 429, body = ApiError)))]
pub async fn client_timeline(
    admin: AdminIdentity,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let client_id = admin::named_client(&path).map_err(failed("client_timeline"))?;
    let found = admin::client_timeline(&state, &admin, &client_id)
        .await
        .map_err(failed("client_timeline"))?;
    let kept_days = state.config.admin.timeline_days;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(AdminTimeline::new(client_id, found, kept_days)))
}
