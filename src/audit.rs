//! Security events, one structured record each, under the `audit` target.
//! Fields name clients and addresses, never secrets or tokens.

/// A security-relevant event.
#[derive(Debug)]
pub enum AuditEvent<'a> {
    Consent {
        client_id: &'a str,
        ip: &'a str,
        approved: bool,
    },
    LoginCompleted {
        client_id: &'a str,
        ip: &'a str,
    },
    LoginFailed {
        client_id: &'a str,
        ip: &'a str,
        error: &'a str,
    },
    TokenIssued {
        client_id: &'a str,
        ip: &'a str,
        grant_type: &'a str,
        grant_id: &'a str,
    },
    TokenExchangeFailed {
        client_id: &'a str,
        ip: &'a str,
        grant_type: &'a str,
        error: &'a str,
    },
    InvalidClient {
        client_id: &'a str,
        ip: &'a str,
    },
    TokenRevoked {
        client_id: &'a str,
        ip: &'a str,
        kind: &'a str,
        grant_id: &'a str,
    },
    ClientRegistered {
        client_id: &'a str,
        ip: &'a str,
        auth_method: &'a str,
    },
    RegistrationRefused {
        ip: &'a str,
        error: &'a str,
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
    Cleanup {
        removed_clients: usize,
        duration_ms: u64,
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
                target: "audit", event_type = "client_registration", client_id, ip_address = ip,
                auth_method, success = true, "Client registered: {client_id}"
            ),
            AuditEvent::RegistrationRefused { ip, error } => tracing::warn!(
                target: "audit", event_type = "client_registration", ip_address = ip, error,
                success = false, "Client registration refused: {error}"
            ),
            AuditEvent::ClientRead { client_id, ip } => tracing::info!(
                target: "audit", event_type = "client_read", client_id, ip_address = ip, success = true,
                "Client configuration read: {client_id}"
            ),
            AuditEvent::ClientUpdated { client_id, ip } => tracing::info!(
                target: "audit", event_type = "client_update", client_id, ip_address = ip, success = true,
                "Client updated: {client_id}"
            ),
            AuditEvent::ClientDeleted { client_id, ip } => tracing::info!(
                target: "audit", event_type = "client_delete", client_id, ip_address = ip, success = true,
                "Client deleted: {client_id}"
            ),
            AuditEvent::InvalidRegistrationToken { client_id, ip } => tracing::warn!(
                target: "audit", event_type = "invalid_registration_token", client_id, ip_address = ip,
                success = false, "Invalid registration access token for: {client_id}"
            ),
            AuditEvent::ClientExpired { client_id } => tracing::info!(
                target: "audit", event_type = "client_expired", client_id, success = true,
                "Expired client cleaned up: {client_id}"
            ),
            AuditEvent::Consent {
                client_id,
                ip,
                approved,
            } => tracing::info!(
                target: "audit", event_type = "consent", client_id, ip_address = ip, approved, success = true,
                "Consent {} for: {client_id}", if *approved { "approved" } else { "denied" }
            ),
            AuditEvent::LoginCompleted { client_id, ip } => tracing::info!(
                target: "audit", event_type = "login", client_id, ip_address = ip, success = true,
                "Mapped temp to real credentials; sign-in completed for: {client_id}"
            ),
            AuditEvent::LoginFailed {
                client_id,
                ip,
                error,
            } => tracing::warn!(
                target: "audit", event_type = "login", client_id, ip_address = ip, error, success = false,
                "Sign-in failed for {client_id}: {error}"
            ),
            AuditEvent::TokenIssued {
                client_id,
                ip,
                grant_type,
                grant_id,
            } => tracing::info!(
                target: "audit", event_type = "token_issued", client_id, ip_address = ip, grant_type, grant_id,
                success = true, "Token exchange successful ({grant_type}) for: {client_id}"
            ),
            AuditEvent::TokenExchangeFailed {
                client_id,
                ip,
                grant_type,
                error,
            } => tracing::warn!(
                target: "audit", event_type = "token_exchange", client_id, ip_address = ip, grant_type, error,
                success = false, "Token exchange failed: {client_id} - {error}"
            ),
            AuditEvent::InvalidClient { client_id, ip } => tracing::warn!(
                target: "audit", event_type = "invalid_client", client_id, ip_address = ip, success = false,
                "Invalid proxy client credentials: {client_id}"
            ),
            AuditEvent::TokenRevoked {
                client_id,
                ip,
                kind,
                grant_id,
            } => tracing::info!(
                target: "audit", event_type = "token_revoked", client_id, ip_address = ip, kind, grant_id,
                success = true, "Token revoked ({kind}) for: {client_id}"
            ),
            AuditEvent::Cleanup {
                removed_clients,
                duration_ms,
            } => tracing::info!(
                target: "audit", event_type = "cleanup", removed_clients, duration_ms, success = true,
                "Cleanup removed {removed_clients} expired clients"
            ),
        }
    }
}
