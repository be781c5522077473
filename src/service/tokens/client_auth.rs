//! Client authentication at the token, revocation and introspection
//! endpoints (RFC 6749 §2.3): the credentials a client presented, checked
//! against the Registry, with failed attempts counted per client and
//! address.

use crate::actors::registry::{AuthenticateClient, ClientView, RegistryError};
use crate::audit::AuditEvent;
use crate::domain::{AuthMethod, ClientId, SecretToken};
use crate::metrics::METRICS;
use crate::service::{ServiceError, Services};

/// Credentials a client presented (read from the `Authorization` header or
/// the form by the HTTP side).
#[derive(Debug)]
pub struct Presented {
    /// As sent: a proxy client id (`mcp_…`), a metadata document's URL, or
    /// with the compatibility switch an upstream client id.
    pub client_id: String,
    pub secret: Option<SecretToken>,
    pub method: AuthMethod,
}

impl Presented {
    /// The client id as it may appear in a log line: the characters of a
    /// client id (or of a metadata document's URL) only, at most 120 of them.
    pub fn shown_id(&self) -> String {
        self.client_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "_-.:/".contains(*c))
            .take(120)
            .collect()
    }
}

/// The registered client these credentials prove, or `invalid_client`
/// (audited, counted towards the lock-out), or 429 once this client id
/// failed too often from this address.
///
/// Credentials that verify are never refused by the lock-out: it counts
/// failures per client *and* address, so a stranger who knows a client id
/// and sends wrong secrets locks out only their own attempts.
pub async fn authenticate(
    services: &Services,
    who: &Presented,
    ip: &str,
) -> Result<ClientView, ServiceError> {
    // An id this server never issues names no client (and never reaches
    // storage): refused like a wrong secret.
    // A metadata-document client whose URL the operator no longer takes
    // is refused too (its tokens stop refreshing at once).
    let permitted = |id: &ClientId| {
        id.document_url()
            .is_none_or(|url| services.config.oauth.cimd.policy.permits(&url).is_ok())
    };
    let answer = match ClientId::parse(&who.client_id).filter(permitted) {
        Some(client_id) => {
            let msg = AuthenticateClient {
                client_id,
                method: who.method,
                secret: who.secret.clone(),
                now: services.clock.now(),
            };
            services.registry.read(msg).await
        }
        None => Ok(Err(RegistryError::InvalidClient)),
    };
    match answer {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(RegistryError::InvalidClient)) => {
            let shown = who.shown_id();
            AuditEvent::InvalidClient {
                client_id: &shown,
                ip,
            }
            .emit();
            crate::service::timeline::authentication_failed(services, &who.client_id);
            let key = format!("{shown}|{ip}");
            let limits = &services.limits;
            match limits.blocked(&key).or_else(|| limits.failed_auth(&key)) {
                Some(wait) => Err(locked_out(ip, &shown, wait)),
                None => Err(ServiceError::invalid_client(
                    "client authentication failed; register again",
                )),
            }
        }
        Ok(Err(e)) => Err(registry_unavailable(e)),
        Err(e) => Err(registry_unavailable(e)),
    }
}

/// 503 with `Retry-After`, as any store failure: the registry's store
/// (PostgreSQL restarting, say) is expected back shortly.
fn registry_unavailable(cause: impl std::fmt::Display) -> ServiceError {
    ServiceError::storage(format!(
        "client authentication could not be checked: {cause}"
    ))
    .describe("the client registry is unavailable; try again")
}

/// A client id locked out after too many failed authentications: counted,
/// audited, and refused with 429 and `Retry-After`.
fn locked_out(ip: &str, client_id: &str, wait: std::time::Duration) -> ServiceError {
    METRICS
        .rate_limited
        .with_label_values(&["failed_client_auth"])
        .inc();
    AuditEvent::RateLimited {
        ip,
        limit: "failed_client_auth",
        client_id: Some(client_id),
    }
    .emit();
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    ServiceError::rate_limited(
        seconds,
        format!("too many failed client authentications; retry in {seconds} s"),
    )
}
