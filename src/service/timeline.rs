//! Each client's connection timeline: the flows tell it what happened to a
//! client (registered, authorize, consent, callback, code exchange,
//! refresh, gateway calls), and operators read it through the admin API
//! (`GET /admin/v1/clients/{id}/timeline`) to answer "why can't this
//! client connect?" (docs/troubleshooting.md).
//!
//! The Registry keeps the timeline beside the client's record (tree
//! `timelines`, removed with the client). Steps are sent to it without
//! waiting: a timeline is a diagnostic, so no sign-in or token request
//! waits for it to be written (a crash may lose the last second of steps).
//! The gateway writes a client's last call at most once per
//! `admin.timeline_gateway_interval_seconds` ([`GatewaySampler`]), so its
//! hot path costs one lookup in a map and no write. Reads go through the
//! actor, after every step sent before them.
//!
//! Nothing secret is recorded: RFC error codes and their descriptions
//! (never a secret, see [`ServiceError`]), redirect hosts, scopes, and the
//! user only as `audit.user_field` allows.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::actors::registry::{RecordGatewayCall, RecordStep};
use crate::clock::UnixTime;
use crate::domain::timeline::{Outcome, Step, StepKind};
use crate::domain::ClientId;
use crate::service::{ServiceError, Services};

/// Clients whose last gateway write is remembered before old entries are
/// dropped (a map of recent callers, not of every client ever seen).
const SAMPLED_CLIENTS: usize = 10_000;

/// When each client's gateway calls were last written, so a busy client
/// costs one write per interval, not one per request.
pub struct GatewaySampler {
    interval: i64,
    last: Mutex<HashMap<String, UnixTime>>,
}

impl GatewaySampler {
    pub fn new(interval_seconds: i64) -> Self {
        Self {
            interval: interval_seconds.max(1),
            last: Mutex::default(),
        }
    }

    /// Whether `key` is due a write at `now` (and, if so, notes it).
    fn due(&self, key: &str, now: UnixTime) -> bool {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if last.get(key).is_some_and(|t| now - t < self.interval) {
            return false;
        }
        if last.len() >= SAMPLED_CLIENTS {
            last.retain(|_, t| now - *t < self.interval);
        }
        last.insert(key.to_owned(), now);
        true
    }
}

pub(crate) fn keep_seconds(services: &Services) -> i64 {
    services.config.admin.timeline_keep_seconds()
}

/// Adds `step` to the timeline of `client_id` (nothing when the client is
/// not stored), without waiting.
pub fn record(services: &Services, client_id: &ClientId, step: Step) {
    services.registry.addr().do_send(RecordStep {
        client_id: client_id.clone(),
        step,
        keep_seconds: keep_seconds(services),
    });
}

pub(crate) fn now(services: &Services) -> UnixTime {
    services.clock.now()
}

/// A registration, or a metadata document taken (`how` says which).
pub fn registered(services: &Services, client_id: &ClientId, how: &str) {
    let step = Step::new(now(services), StepKind::Registered, Outcome::Ok).detail(how);
    record(services, client_id, step);
}

/// The person's answer on the consent page.
pub fn consent(services: &Services, client_id: &ClientId, approved: bool) {
    let at = now(services);
    let step = if approved {
        Step::new(at, StepKind::Consent, Outcome::Approved)
    } else {
        Step::new(at, StepKind::Consent, Outcome::Denied)
            .error("access_denied", "the user denied the request")
    };
    record(services, client_id, step);
}

/// A callback that came to another browser than the one that approved.
pub fn callback_in_another_browser(services: &Services, client_id: &ClientId) {
    let step = Step::new(now(services), StepKind::Callback, Outcome::Error).error(
        "access_denied",
        "the sign-in was approved in another browser than the one that came back (shown to the person)",
    );
    record(services, client_id, step);
}

/// A token request of an authenticated client: its grant (`label`, as
/// the metrics name it) and outcome.
pub fn exchanged<T>(
    services: &Services,
    client_id: &ClientId,
    label: &str,
    result: &Result<T, ServiceError>,
) {
    let kind = match label {
        "refresh_token" => StepKind::Refresh,
        _ => StepKind::CodeExchange,
    };
    let at = now(services);
    let step = match result {
        Ok(_) => Step::new(at, kind, Outcome::Ok),
        Err(e) => Step::new(at, kind, Outcome::Error).error(e.code.as_str(), &e.description),
    };
    let step = if label == "other" {
        step.detail("unsupported grant_type")
    } else {
        step
    };
    record(services, client_id, step);
}

/// A failed client authentication at the token endpoint for an id that
/// may be a stored client's.
pub fn authentication_failed(services: &Services, raw_client_id: &str) {
    let Some(client_id) = ClientId::parse(raw_client_id) else {
        return;
    };
    let step = Step::new(
        now(services),
        StepKind::ClientAuthentication,
        Outcome::Error,
    )
    .error(
        "invalid_client",
        "client authentication failed (wrong secret or method)",
    );
    record(services, &client_id, step);
}

/// A call of `client_id` let through the gateway: written when the
/// client's last write is older than the interval.
pub fn gateway_call(services: &Services, client_id: &ClientId, now: UnixTime) {
    if !services.timeline.due(client_id.as_str(), now) {
        return;
    }
    services.registry.addr().do_send(RecordGatewayCall {
        client_id: client_id.clone(),
        now,
        keep_seconds: keep_seconds(services),
    });
}

/// A gateway call of `client_id` refused with `code`: a step, written at
/// most once per interval per client and code.
pub fn gateway_refused(services: &Services, client_id: &ClientId, code: &str, description: &str) {
    let at = now(services);
    if !services.timeline.due(&format!("{client_id}\n{code}"), at) {
        return;
    }
    let step = Step::new(at, StepKind::GatewayCall, Outcome::Error).error(code, description);
    record(services, client_id, step);
}

/// The host of a URI, or `unknown` when it has none.
pub(super) fn host(uri: &str) -> String {
    url::Url::parse(uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_client_is_written_once_per_interval() {
        let sampler = GatewaySampler::new(60);
        assert!(sampler.due("mcp_a", 1_000));
        assert!(!sampler.due("mcp_a", 1_059));
        assert!(sampler.due("mcp_b", 1_059), "each client on its own");
        assert!(sampler.due("mcp_a", 1_060));
    }

    #[test]
    fn the_sampler_forgets_quiet_clients_when_full() {
        let sampler = GatewaySampler::new(60);
        for i in 0..SAMPLED_CLIENTS {
            assert!(sampler.due(&format!("mcp_{i}"), 0));
        }
        assert!(sampler.due("mcp_new", 120));
        assert_eq!(sampler.last.lock().unwrap().len(), 1);
    }

    #[test]
    fn hosts_are_shown_without_paths_or_queries() {
        assert_eq!(
            host("https://claude.ai/api/mcp/auth_callback?x=1"),
            "claude.ai"
        );
        assert_eq!(host("http://127.0.0.1:6274/cb"), "127.0.0.1");
        assert_eq!(host("not a uri"), "unknown");
    }
}
