//! `[clients]`: how long registrations live and how many the registry holds.

use std::time::Duration;

use super::rules::ranged;
use crate::configuration::{ClientsConfig, ConfigError, Settings};

pub(super) fn validate(s: &Settings) -> Result<ClientsConfig, ConfigError> {
    let hours = ranged("clients.expiry_hours", s.clients.expiry_hours, 1, 24 * 365)?;
    let unused = ranged(
        "clients.unused_expiry_minutes",
        s.clients.unused_expiry_minutes,
        1,
        60 * 24 * 365,
    )?;
    let cleanup = ranged(
        "clients.cleanup_interval_minutes",
        s.clients.cleanup_interval_minutes,
        1,
        60 * 24 * 7,
    )?;
    let max_clients =
        ranged("clients.max_clients", s.clients.max_clients, 1, 100_000_000)? as usize;
    // A flood limit like the rate limits: off with them (benchmarks).
    let max_unused_per_address = ranged(
        "clients.max_unused_per_address",
        s.clients.max_unused_per_address,
        0,
        100_000_000,
    )? as usize
        * usize::from(s.rate_limit.enabled);
    let evict_unused_after = ranged(
        "clients.evict_unused_after_minutes",
        s.clients.evict_unused_after_minutes,
        0,
        60 * 24 * 365,
    )?;
    Ok(ClientsConfig {
        expiry: Duration::from_secs(hours * 3600),
        unused_expiry: Duration::from_secs(unused * 60),
        cleanup_interval: Duration::from_secs(cleanup * 60),
        max_clients,
        max_unused_per_address,
        evict_unused_after: (evict_unused_after > 0)
            .then(|| Duration::from_secs(evict_unused_after * 60)),
    })
}
