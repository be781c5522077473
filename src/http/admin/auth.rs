//! The admin bearer token: configured (`DRAWBRIDGE_ADMIN_TOKEN`) or
//! generated at first start into a 0600 file whose path is logged.

use std::future::{ready, Ready};
use std::path::Path;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest};

use super::ApiError;
use crate::audit::AuditEvent;
use crate::configuration::{Config, StorageMode};
use crate::domain::{SecretHash, SecretToken};
use crate::http::{client_ip, AppState};
use crate::metrics::METRICS;
use crate::service::clients::admin::Operator;

/// The admin token's hash; `None` means the admin API is off.
#[derive(Clone, Debug)]
pub struct AdminToken(pub Option<SecretHash>);

impl AdminToken {
    /// Resolves the admin token at start-up.
    pub fn resolve(config: &Config) -> Result<Self, String> {
        let admin = &config.admin;
        if !admin.enabled {
            return Ok(Self(None));
        }
        if !admin.token.0.is_empty() {
            return Ok(Self(Some(
                SecretToken::presented(admin.token.0.as_str()).hash(),
            )));
        }
        if config.storage.mode == StorageMode::MemoryOnly {
            tracing::warn!("admin API disabled: MEMORY_ONLY writes no token file; set DRAWBRIDGE_ADMIN_TOKEN to enable it");
            return Ok(Self(None));
        }
        let path = Path::new(&admin.token_file);
        if path.exists() {
            check_private(path)?;
            let token =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            return Ok(Self(Some(SecretToken::presented(token.trim()).hash())));
        }
        let token = SecretToken::generate("mcp_admin_");
        crate::crypto::keyfile::write_private_atomically(path, token.expose().as_bytes())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        tracing::info!(path = %path.display(), "generated the admin API token; it is in this file (mode 0600)");
        Ok(Self(Some(token.hash())))
    }
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| e.to_string())?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "admin token file {} is readable by others (mode {mode:o}); run: chmod 600 {}",
            path.display(),
            path.display()
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path) -> Result<(), String> {
    Ok(())
}

/// Proof that a request carries the admin token; extract it in every admin
/// handler. It is the [`Operator`] who acts (and from where) that the
/// admin operations audit.
pub struct AdminIdentity(pub Operator);

impl std::ops::Deref for AdminIdentity {
    type Target = Operator;

    fn deref(&self) -> &Operator {
        &self.0
    }
}

fn check(req: &HttpRequest) -> Result<AdminIdentity, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(ApiError::unavailable)?;
    let ip = client_ip(req);
    let Some(expected) = &state.admin.0 else {
        return Err(ApiError::not_found(
            "the admin API is disabled on this server",
        ));
    };
    match crate::http::bearer(req) {
        Some(token) if expected.verify(&token) => Ok(AdminIdentity(Operator { ip })),
        _ => {
            AuditEvent::AdminAction {
                admin: "unauthenticated",
                ip: &ip,
                action: "authenticate",
                target: req.path(),
                success: false,
            }
            .emit();
            // The right token is never refused: only failures from this
            // address count, and only they are answered with the lock-out.
            let key = format!("admin:{ip}");
            if let Some(wait) = state
                .limits
                .blocked(&key)
                .or_else(|| state.limits.failed_auth(&key))
            {
                return Err(locked(wait, &ip));
            }
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid admin bearer token is required",
            ))
        }
    }
}

fn locked(wait: std::time::Duration, ip: &str) -> ApiError {
    METRICS
        .rate_limited
        .with_label_values(&["admin_auth"])
        .inc();
    AuditEvent::RateLimited {
        ip,
        limit: "admin_auth",
        client_id: None,
    }
    .emit();
    let mut e = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "too many failed admin authentications",
    );
    e.retry_after = Some(wait.as_secs().max(1));
    e
}

impl FromRequest for AdminIdentity {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(check(req))
    }
}
