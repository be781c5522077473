//! `[rate_limit]`, `[audit]`, `[admin]` and `[telemetry]`: what operators
//! run the service with.

use super::rules::{err, ranged};
use crate::configuration::{ConfigError, Settings};
use crate::domain::Cidr;

/// How log lines are written (`telemetry.log_format`, `LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable on a terminal, bunyan JSON otherwise.
    Auto,
    /// Bunyan JSON, one object per line.
    Json,
    /// Compact human-readable lines.
    Pretty,
}

impl LogFormat {
    /// `Auto` resolved for a sink that is (or is not) a terminal.
    pub fn human(self, terminal: bool) -> bool {
        match self {
            LogFormat::Auto => terminal,
            LogFormat::Json => false,
            LogFormat::Pretty => true,
        }
    }
}

/// `[rate_limit]`; returns the trusted proxies.
pub(super) fn rate_limit(s: &Settings) -> Result<Vec<Cidr>, ConfigError> {
    let r = &s.rate_limit;
    for (key, value, hi) in [
        (
            "rate_limit.registrations_per_minute",
            r.registrations_per_minute,
            1_000_000,
        ),
        (
            "rate_limit.global_registrations_per_minute",
            r.global_registrations_per_minute,
            100_000_000,
        ),
        (
            "rate_limit.token_per_minute",
            r.token_per_minute,
            100_000_000,
        ),
        (
            "rate_limit.authorize_per_minute",
            r.authorize_per_minute,
            100_000_000,
        ),
        (
            "rate_limit.failed_auth_per_minute",
            r.failed_auth_per_minute,
            1_000_000,
        ),
    ] {
        ranged(key, value, 1, hi)?;
    }
    // 0: the burst follows registrations_per_minute.
    ranged(
        "rate_limit.registration_burst",
        r.registration_burst,
        0,
        1_000_000,
    )?;
    r.trusted_proxies
        .iter()
        .map(|p| {
            Cidr::parse(p).ok_or_else(|| {
                err(
                    "rate_limit.trusted_proxies",
                    format!("`{p}` is not an IP address or CIDR range"),
                )
            })
        })
        .collect()
}

/// `[audit]` and `[admin]`.
pub(super) fn audit_and_admin(s: &Settings) -> Result<(), ConfigError> {
    if !["email", "hashed", "none"].contains(&s.audit.user_field.as_str()) {
        return Err(err(
            "audit.user_field",
            format!(
                "expected email, hashed or none, got `{}`",
                s.audit.user_field
            ),
        ));
    }
    if !s.admin.listen.is_empty() && s.admin.listen.parse::<std::net::SocketAddr>().is_err() {
        return Err(err(
            "admin.listen",
            format!(
                "expected an address such as 127.0.0.1:8003, got `{}`",
                s.admin.listen
            ),
        ));
    }
    if !s.admin.token.0.is_empty() && s.admin.token.0.len() < 16 {
        return Err(err("admin.token", "must be at least 16 characters"));
    }
    if !(1..=365).contains(&s.admin.timeline_days) {
        return Err(err(
            "admin.timeline_days",
            format!("expected 1 to 365, got {}", s.admin.timeline_days),
        ));
    }
    let interval = s.admin.timeline_gateway_interval_seconds;
    if !(1..=3600).contains(&interval) {
        return Err(err(
            "admin.timeline_gateway_interval_seconds",
            format!("expected 1 to 3600, got {interval}"),
        ));
    }
    Ok(())
}

/// `[telemetry]`; returns the log format.
pub(super) fn telemetry(s: &Settings) -> Result<LogFormat, ConfigError> {
    tracing_subscriber::EnvFilter::try_new(&s.telemetry.log_level)
        .map_err(|e| err("telemetry.log_level", e.to_string()))?;
    match s.telemetry.log_format.as_str() {
        "auto" => Ok(LogFormat::Auto),
        "json" => Ok(LogFormat::Json),
        "pretty" => Ok(LogFormat::Pretty),
        other => Err(err(
            "telemetry.log_format",
            format!("expected auto, json or pretty, got `{other}`"),
        )),
    }
}
