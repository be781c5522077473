//! Rate limits over `governor`: per client address for registration, the
//! token endpoint and authorization requests, a global registration quota,
//! and failed client authentications per client id. Keys are pruned so
//! memory stays bounded however many addresses appear.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::Clock as GovernorClock;
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::HashMapStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::clock::Clock;
use crate::configuration::RateLimitSettings;

/// Time for the limiters: real monotonic time, or the tests' manual clock.
#[derive(Clone)]
pub struct LimiterClock {
    clock: Clock,
    start: std::time::Instant,
}

impl GovernorClock for LimiterClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        match &self.clock {
            Clock::System => self.start.elapsed(),
            Clock::Manual(_) => Duration::from_secs(self.clock.now().max(0) as u64),
        }
    }
}

type Keyed = RateLimiter<String, HashMapStateStore<String>, LimiterClock, NoOpMiddleware<Duration>>;
type Direct = RateLimiter<NotKeyed, InMemoryState, LimiterClock, NoOpMiddleware<Duration>>;

/// Which quota a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Registration,
    Token,
    Authorize,
    FailedAuth,
}

impl Limit {
    pub fn label(self) -> &'static str {
        match self {
            Limit::Registration => "registration",
            Limit::Token => "token",
            Limit::Authorize => "authorize",
            Limit::FailedAuth => "failed_client_auth",
        }
    }
}

pub struct RateLimits {
    enabled: bool,
    clock: LimiterClock,
    registration: Keyed,
    registration_global: Direct,
    token: Keyed,
    authorize: Keyed,
    failed_auth: Keyed,
    /// Client ids whose failed authentications ran out, until when.
    blocked: Mutex<HashMap<String, Duration>>,
}

fn per_minute(n: i64, burst: i64) -> Quota {
    let n = NonZeroU32::new(n.clamp(1, u32::MAX as i64) as u32).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst.clamp(1, u32::MAX as i64) as u32).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(n).allow_burst(burst)
}

impl RateLimits {
    pub fn new(s: &RateLimitSettings, clock: Clock) -> Self {
        let clock = LimiterClock {
            clock,
            start: std::time::Instant::now(),
        };
        let keyed = |q: Quota| Keyed::new(q, HashMapStateStore::default(), clock.clone());
        Self {
            enabled: s.enabled,
            registration: keyed(per_minute(
                s.registrations_per_minute,
                match s.registration_burst {
                    0 => s.registrations_per_minute,
                    set => set,
                },
            )),
            registration_global: Direct::direct_with_clock(
                per_minute(
                    s.global_registrations_per_minute,
                    s.global_registrations_per_minute / 4 + 1,
                ),
                clock.clone(),
            ),
            token: keyed(per_minute(s.token_per_minute, s.token_per_minute / 4 + 1)),
            authorize: keyed(per_minute(
                s.authorize_per_minute,
                s.authorize_per_minute / 4 + 1,
            )),
            failed_auth: keyed(per_minute(
                s.failed_auth_per_minute,
                s.failed_auth_per_minute,
            )),
            blocked: Mutex::default(),
            clock,
        }
    }

    /// Counts one request against `limit` for `key`; `Err` carries how long
    /// to wait.
    pub fn check(&self, limit: Limit, key: &str) -> Result<(), Duration> {
        if !self.enabled {
            return Ok(());
        }
        let now = self.clock.now();
        let key = key.to_owned();
        let outcome = match limit {
            Limit::Registration => self
                .registration
                .check_key(&key)
                .and_then(|_| self.registration_global.check()),
            Limit::Token => self.token.check_key(&key),
            Limit::Authorize => self.authorize.check_key(&key),
            Limit::FailedAuth => self.failed_auth.check_key(&key),
        };
        outcome
            .map(|_| ())
            .map_err(|not_until| not_until.wait_time_from(now).max(Duration::from_secs(1)))
    }

    /// Whether `client_id` is locked out after too many failed authentications.
    pub fn blocked(&self, client_id: &str) -> Option<Duration> {
        if !self.enabled {
            return None;
        }
        let now = self.clock.now();
        let blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        blocked
            .get(client_id)
            .filter(|until| **until > now)
            .map(|until| *until - now)
    }

    /// Records a failed authentication; answers the lock-out when it ran out.
    pub fn failed_auth(&self, client_id: &str) -> Option<Duration> {
        let wait = self.check(Limit::FailedAuth, client_id).err()?;
        let until = self.clock.now() + wait;
        self.blocked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(client_id.to_owned(), until);
        Some(wait)
    }

    /// Forgets keys whose state is back to fresh (called by the Janitor).
    pub fn prune(&self) {
        for limiter in [
            &self.registration,
            &self.token,
            &self.authorize,
            &self.failed_auth,
        ] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        let now = self.clock.now();
        self.blocked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, until| *until > now);
    }

    /// Keys held across the keyed limiters (for tests and metrics).
    pub fn keys(&self) -> usize {
        [
            &self.registration,
            &self.token,
            &self.authorize,
            &self.failed_auth,
        ]
        .iter()
        .map(|l| l.len())
        .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_minute: i64) -> (RateLimits, Clock) {
        let clock = Clock::manual(1_000);
        let s = RateLimitSettings {
            registrations_per_minute: per_minute,
            registration_burst: per_minute,
            ..Default::default()
        };
        (RateLimits::new(&s, clock.clone()), clock)
    }

    #[test]
    fn the_quota_runs_out_per_key_and_comes_back() {
        let (l, clock) = limits(3);
        for _ in 0..3 {
            assert!(l.check(Limit::Registration, "1.1.1.1").is_ok());
        }
        let wait = l.check(Limit::Registration, "1.1.1.1").unwrap_err();
        assert!(
            wait >= Duration::from_secs(1) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(
            l.check(Limit::Registration, "2.2.2.2").is_ok(),
            "another address is unaffected"
        );
        clock.advance(60);
        assert!(
            l.check(Limit::Registration, "1.1.1.1").is_ok(),
            "the window resets"
        );
    }

    #[test]
    fn pruning_bounds_memory_under_many_addresses() {
        let (l, clock) = limits(3);
        for i in 0..10_000 {
            let _ = l.check(
                Limit::Registration,
                &format!("10.0.{}.{}", i / 256, i % 256),
            );
        }
        assert_eq!(l.keys(), 10_000);
        clock.advance(120);
        l.prune();
        assert_eq!(l.keys(), 0);
    }

    #[test]
    fn failed_authentications_lock_a_client_out_for_a_while() {
        let (l, clock) = limits(3);
        for _ in 0..10 {
            assert!(l.failed_auth("mcp_x").is_none());
        }
        assert!(l.failed_auth("mcp_x").is_some());
        assert!(l.blocked("mcp_x").is_some());
        assert!(l.blocked("mcp_y").is_none());
        clock.advance(61);
        assert!(l.blocked("mcp_x").is_none());
    }
}
