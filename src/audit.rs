//! Security events, one structured record each, under the `audit` target.
//! Fields name clients and addresses, never secrets or tokens.

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
