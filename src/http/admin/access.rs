//! `/admin/v1/access`: the access policy in service (who may sign in).

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::{AdminIdentity, ApiError};
use crate::http::{allow, AppState};
use crate::service::access::EffectiveList;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/access")
            .route(web::get().to(access_policy))
            .default_service(allow("GET")),
    );
}

/// One list of the policy as in service.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessList {
    /// Every entry (lower-cased, sorted, without duplicates).
    pub entries: Vec<String>,
    pub count: usize,
    /// How many entries the configuration (file or environment) gave.
    pub from_configuration: usize,
    /// The list file whose entries were added, if any.
    pub file: Option<String>,
    /// How many entries that file gave when it was last read.
    pub from_file: usize,
}

impl From<&EffectiveList> for AccessList {
    fn from(l: &EffectiveList) -> Self {
        Self {
            count: l.entries.len(),
            entries: l.entries.clone(),
            from_configuration: l.from_configuration,
            file: l.file.as_ref().map(|f| f.display().to_string()),
            from_file: l.from_file,
        }
    }
}

/// The access policy in service.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"open": false, "allowed_emails": {"entries": ["ada@example.org"], "count": 1, "from_configuration": 0, "file": "/etc/drawbridge/allowed-emails", "from_file": 1},
    "allowed_domains": {"entries": [], "count": 0, "from_configuration": 0, "file": null, "from_file": 0},
    "google_workspace_domains": {"entries": ["example.com"], "count": 1, "from_configuration": 1, "file": null, "from_file": 0},
    "denied_emails": {"entries": [], "count": 0, "from_configuration": 0, "file": null, "from_file": 0},
    "hd_hint": "example.com", "loaded_at": 1764205200}))]
pub struct AccessPolicyView {
    /// No allow list is set: anyone may sign in (but the denied).
    pub open: bool,
    pub allowed_emails: AccessList,
    pub allowed_domains: AccessList,
    pub google_workspace_domains: AccessList,
    pub denied_emails: AccessList,
    /// The `hd` hint sent to Google (exactly one Workspace domain).
    pub hd_hint: Option<String>,
    /// When the lists were put in service (Unix seconds): start-up, or the
    /// last SIGHUP whose files were taken.
    pub loaded_at: i64,
}

#[utoipa::path(get, path = "/admin/v1/access", tag = "admin: access", security(("admin_token" = [])),
    responses((status = 200, description = "The access policy in service", body = AccessPolicyView), (status = 401, body = ApiError)))]
pub async fn access_policy(
    admin: AdminIdentity,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let l = state.access.current();
    admin.audit("read_access_policy", "server");
    Ok(HttpResponse::Ok().json(AccessPolicyView {
        open: l.policy.is_open(),
        allowed_emails: (&l.allowed_emails).into(),
        allowed_domains: (&l.allowed_domains).into(),
        google_workspace_domains: (&l.google_workspace_domains).into(),
        denied_emails: (&l.denied_emails).into(),
        hd_hint: l.policy.hd_hint().map(str::to_owned),
        loaded_at: l.loaded_at,
    }))
}
