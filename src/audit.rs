//! The audit log: one structured record per security event, under the
//! `audit` target (bunyan JSON on stdout, and in `audit.log_path` when set).
//! Every record has `event_type`, `client_id`, `ip`, `success` and, where it
//! applies, `reason` and `user` (as `audit.user_field` allows). Secrets and
//! tokens never appear: events carry ids, never credentials.

use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// How users appear in audit records (`audit.user_field`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserField {
    Email,
    Hashed,
    Omitted,
}

static USER_FIELD: OnceLock<UserField> = OnceLock::new();

/// Sets how users appear; the first call wins (tests share a process).
pub fn set_user_field(raw: &str) {
    let field = match raw {
        "email" => UserField::Email,
        "none" => UserField::Omitted,
        _ => UserField::Hashed,
    };
    let _ = USER_FIELD.set(field);
}

/// The user as `audit.user_field` allows them to appear (email, hashed, or
/// not at all).
pub(crate) fn shown_user(email: Option<&str>) -> Option<String> {
    let email = email?;
    match USER_FIELD.get().copied().unwrap_or(UserField::Hashed) {
        UserField::Email => Some(email.to_owned()),
        UserField::Hashed => {
            let digest = Sha256::digest(email.to_lowercase().as_bytes());
            Some(format!("sha256:{}", crate::crypto::hex(&digest[..8])))
        }
        UserField::Omitted => None,
    }
}

/// A security-relevant event.
#[derive(Debug)]
pub enum AuditEvent<'a> {
    ClientRegistered {
        client_id: &'a str,
        ip: &'a str,
        auth_method: &'a str,
    },
    RegistrationRefused {
        ip: &'a str,
        reason: &'a str,
    },
    /// An ACME certificate was issued and put in service.
    CertificateIssued {
        domains: &'a str,
        renewal: bool,
        not_after: i64,
    },
    /// An ACME order failed; the certificate in service stays.
    CertificateOrderFailed {
        domains: &'a str,
        reason: &'a str,
        retry_in_seconds: u64,
    },
    /// A client's metadata document was taken (first sign-in, or changed).
    ClientDocumentAdmitted {
        client_id: &'a str,
        ip: &'a str,
    },
    /// A client's metadata document was refused: by the operator's policy,
    /// or it could not be fetched, or it is invalid.
    ClientDocumentRefused {
        client_id: &'a str,
        ip: &'a str,
        reason: &'a str,
    },
    ClientRead {
        client_id: &'a str,
        ip: &'a str,
    },
    ClientUpdated {
        client_id: &'a str,
        ip: &'a str,
    },
    ClientDeleted {
        client_id: &'a str,
        ip: &'a str,
    },
    InvalidRegistrationToken {
        client_id: &'a str,
        ip: &'a str,
    },
    ClientExpired {
        client_id: &'a str,
    },
    /// A never-used registration removed to make room in a full registry.
    ClientEvicted {
        client_id: &'a str,
        ip: &'a str,
    },
    AuthorizationStarted {
        client_id: &'a str,
        ip: &'a str,
    },
    Consent {
        client_id: &'a str,
        ip: &'a str,
        approved: bool,
    },
    UpstreamCallback {
        client_id: &'a str,
        ip: &'a str,
        user: Option<&'a str>,
        reason: Option<&'a str>,
    },
    /// A person the access policy does not admit: at sign-in (nothing
    /// stored), or a signed-in user at the gateway or at a refresh.
    AccessRefused {
        stage: &'a str,
        client_id: &'a str,
        ip: &'a str,
        user: Option<&'a str>,
        reason: &'a str,
    },
    TokenIssued {
        client_id: &'a str,
        ip: &'a str,
        grant_id: &'a str,
    },
    TokenRefreshed {
        client_id: &'a str,
        ip: &'a str,
        grant_id: &'a str,
    },
    TokenExchangeFailed {
        client_id: &'a str,
        ip: &'a str,
        grant_type: &'a str,
        reason: &'a str,
    },
    TokenReuseDetected {
        client_id: &'a str,
        ip: &'a str,
        reason: &'a str,
    },
    TokenRevoked {
        client_id: &'a str,
        ip: &'a str,
        kind: &'a str,
        grant_id: &'a str,
    },
    InvalidClient {
        client_id: &'a str,
        ip: &'a str,
    },
    RateLimited {
        ip: &'a str,
        limit: &'a str,
        client_id: Option<&'a str>,
    },
    JanitorRun {
        removed_clients: usize,
        removed_tokens: usize,
        removed_grants: usize,
        removed_users: usize,
        duration_ms: u64,
    },
    KeyRotated {
        key_id: &'a str,
        resealed: usize,
        retired: usize,
    },
    AdminAction {
        admin: &'a str,
        ip: &'a str,
        action: &'a str,
        target: &'a str,
        success: bool,
    },
}

impl AuditEvent<'_> {
    /// Writes the event as one JSON log record.
    pub fn emit(&self) {
        match self {
            AuditEvent::ClientRegistered {
                client_id,
                ip,
                auth_method,
            } => tracing::info!(
                target: "audit", event_type = "client_registered", client_id, ip, auth_method, success = true,
                "Client registered: {client_id}"
            ),
            AuditEvent::RegistrationRefused { ip, reason } => tracing::warn!(
                target: "audit", event_type = "client_registered", ip, reason, success = false,
                "Client registration refused: {reason}"
            ),
            AuditEvent::CertificateIssued {
                domains,
                renewal,
                not_after,
            } => tracing::info!(
                target: "audit", event_type = if *renewal { "certificate_renewed" } else { "certificate_issued" },
                domains, not_after, success = true,
                "HTTPS certificate issued by ACME for {domains}"
            ),
            AuditEvent::CertificateOrderFailed {
                domains,
                reason,
                retry_in_seconds,
            } => tracing::warn!(
                target: "audit", event_type = "certificate_order_failed", domains, reason, retry_in_seconds,
                success = false,
                "ACME certificate order for {domains} failed (the certificate in service stays): {reason}"
            ),
            AuditEvent::ClientDocumentAdmitted { client_id, ip } => tracing::info!(
                target: "audit", event_type = "client_document_admitted", client_id, ip, success = true,
                "Client metadata document taken for: {client_id}"
            ),
            AuditEvent::ClientDocumentRefused {
                client_id,
                ip,
                reason,
            } => tracing::warn!(
                target: "audit", event_type = "client_document_refused", client_id, ip, reason, success = false,
                "Client metadata document refused for {client_id}: {reason}"
            ),
            AuditEvent::ClientRead { client_id, ip } => tracing::info!(
                target: "audit", event_type = "client_read", client_id, ip, success = true,
                "Client configuration read: {client_id}"
            ),
            AuditEvent::ClientUpdated { client_id, ip } => tracing::info!(
                target: "audit", event_type = "client_updated", client_id, ip, success = true, "Client updated: {client_id}"
            ),
            AuditEvent::ClientDeleted { client_id, ip } => tracing::info!(
                target: "audit", event_type = "client_deleted", client_id, ip, success = true, "Client deleted: {client_id}"
            ),
            AuditEvent::InvalidRegistrationToken { client_id, ip } => tracing::warn!(
                target: "audit", event_type = "invalid_registration_token", client_id, ip, success = false,
                reason = "invalid_token", "Invalid registration access token for: {client_id}"
            ),
            AuditEvent::ClientExpired { client_id } => tracing::info!(
                target: "audit", event_type = "client_expired", client_id, success = true,
                "Expired proxy client cleaned up: {client_id}"
            ),
            AuditEvent::ClientEvicted { client_id, ip } => tracing::info!(
                target: "audit", event_type = "client_evicted", client_id, ip, success = true,
                "Never-used proxy client evicted to make room: {client_id}"
            ),
            AuditEvent::AuthorizationStarted { client_id, ip } => tracing::info!(
                target: "audit", event_type = "authorization_started", client_id, ip, success = true,
                "Authorization started for: {client_id}"
            ),
            AuditEvent::Consent {
                client_id,
                ip,
                approved: true,
            } => tracing::info!(
                target: "audit", event_type = "consent_granted", client_id, ip, success = true,
                "Consent granted for: {client_id}"
            ),
            AuditEvent::Consent {
                client_id,
                ip,
                approved: false,
            } => tracing::info!(
                target: "audit", event_type = "consent_denied", client_id, ip, success = false, reason = "access_denied",
                "Consent denied for: {client_id}"
            ),
            AuditEvent::UpstreamCallback {
                client_id,
                ip,
                user,
                reason,
            } => {
                let user = shown_user(*user);
                match reason {
                    None => tracing::info!(
                        target: "audit", event_type = "upstream_callback", client_id, ip, user, success = true,
                        "Mapped temp to real credentials for: {client_id}"
                    ),
                    Some(reason) => tracing::warn!(
                        target: "audit", event_type = "upstream_callback", client_id, ip, user, reason, success = false,
                        "Upstream sign-in failed for {client_id}: {reason}"
                    ),
                }
            }
            AuditEvent::AccessRefused {
                stage,
                client_id,
                ip,
                user,
                reason,
            } => {
                let user = shown_user(*user);
                let event_type = if *stage == "signin" {
                    "signin_refused"
                } else {
                    "access_refused"
                };
                tracing::warn!(
                    target: "audit", event_type, stage, client_id, ip, user, reason, success = false,
                    "Access refused by the access policy at {stage} for {client_id}: {reason}"
                )
            }
            AuditEvent::TokenIssued {
                client_id,
                ip,
                grant_id,
            } => tracing::info!(
                target: "audit", event_type = "token_issued", client_id, ip, grant_id, success = true,
                "Token exchange successful for: {client_id}"
            ),
            AuditEvent::TokenRefreshed {
                client_id,
                ip,
                grant_id,
            } => tracing::info!(
                target: "audit", event_type = "token_refreshed", client_id, ip, grant_id, success = true,
                "Token refreshed for: {client_id}"
            ),
            AuditEvent::TokenExchangeFailed {
                client_id,
                ip,
                grant_type,
                reason,
            } => tracing::warn!(
                target: "audit", event_type = "token_exchange_failed", client_id, ip, grant_type, reason, success = false,
                "Token exchange failed: {client_id} - {reason}"
            ),
            AuditEvent::TokenReuseDetected {
                client_id,
                ip,
                reason,
            } => tracing::warn!(
                target: "audit", event_type = "token_reuse_detected", client_id, ip, reason, success = false,
                "Token reuse detected for {client_id}: {reason}"
            ),
            AuditEvent::TokenRevoked {
                client_id,
                ip,
                kind,
                grant_id,
            } => tracing::info!(
                target: "audit", event_type = "token_revoked", client_id, ip, kind, grant_id, success = true,
                "Token revoked ({kind}) for: {client_id}"
            ),
            AuditEvent::InvalidClient { client_id, ip } => tracing::warn!(
                target: "audit", event_type = "invalid_client", client_id, ip, success = false, reason = "invalid_client",
                "Invalid proxy client credentials: {client_id}"
            ),
            AuditEvent::RateLimited {
                ip,
                limit,
                client_id,
            } => tracing::warn!(
                target: "audit", event_type = "rate_limited", client_id, ip, limit, success = false, reason = "rate_limited",
                "Rate limit exceeded for IP: {ip}"
            ),
            AuditEvent::JanitorRun {
                removed_clients,
                removed_tokens,
                removed_grants,
                removed_users,
                duration_ms,
            } => tracing::info!(
                target: "audit", event_type = "janitor_run", removed_clients, removed_tokens, removed_grants, removed_users,
                duration_ms, success = true, "Cleanup removed {removed_clients} expired clients"
            ),
            AuditEvent::AdminAction {
                admin,
                ip,
                action,
                target,
                success,
            } => tracing::info!(
                target: "audit", event_type = "admin_action", admin, ip, action, admin_target = target, success,
                "Admin action {action} on {target}"
            ),
            AuditEvent::KeyRotated {
                key_id,
                resealed,
                retired,
            } => tracing::info!(
                target: "audit", event_type = "key_rotated", key_id, resealed, retired, success = true,
                "Encryption key rotated; now {key_id}"
            ),
        }
    }
}
