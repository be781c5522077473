//! A client's connection timeline: the recent steps of its life (registered,
//! authorization requests, consent, the upstream callback, code exchange,
//! refreshes, the first gateway call) and its last error, so an operator
//! can answer "why can't this client connect?".
//!
//! The record is bounded twice: at most [`MAX_STEPS`] steps, none older
//! than the age the operator keeps (`admin.timeline_days`); consecutive
//! repeats of one step with one outcome and error (a client refreshing
//! every hour, one retrying a refused request) are one entry with a count,
//! so they cannot push everything else out. Nothing in it is a secret:
//! steps carry RFC error codes, their descriptions (which never hold a
//! secret, see `service::error`) and a small detail such as a redirect
//! host or scopes — never a code, token, state or verifier.

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;

/// Most steps one client's timeline keeps (the oldest go first).
pub const MAX_STEPS: usize = 50;
/// Longest error description or detail kept, in characters.
const MAX_TEXT: usize = 200;

/// What happened, in the order a client normally goes through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepKind {
    /// Registered (dynamic registration) or admitted (metadata document).
    Registered,
    /// An authorization request arrived (its outcome: `ok` or `error`).
    Authorize,
    /// The consent page was shown, approved or denied.
    Consent,
    /// The identity provider sent the browser back.
    Callback,
    /// `grant_type=authorization_code` at the token endpoint.
    CodeExchange,
    /// `grant_type=refresh_token` at the token endpoint.
    Refresh,
    /// The client's first call through the gateway, or a refused one.
    GatewayCall,
    /// The client failed to authenticate at the token endpoint.
    ClientAuthentication,
}

impl StepKind {
    /// The step's name in the admin API.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Registered => "registered",
            Self::Authorize => "authorize",
            Self::Consent => "consent",
            Self::Callback => "callback",
            Self::CodeExchange => "code_exchange",
            Self::Refresh => "refresh",
            Self::GatewayCall => "gateway_call",
            Self::ClientAuthentication => "client_authentication",
        }
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Ok,
    Error,
    /// The consent page was shown.
    Shown,
    Approved,
    Denied,
}

impl Outcome {
    /// The outcome's name in the admin API.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Shown => "shown",
            Self::Approved => "approved",
            Self::Denied => "denied",
        }
    }
}

/// One step as stored. `at` is its last occurrence; `since` the first of
/// `count` consecutive ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub at: UnixTime,
    pub since: UnixTime,
    pub count: u32,
    pub kind: StepKind,
    pub outcome: Outcome,
    /// The RFC error code returned (or, for a page shown instead of a
    /// redirect, the code of the error class).
    pub error: Option<String>,
    pub description: Option<String>,
    /// A small hint: the redirect host, the scopes, the user (as
    /// `audit.user_field` allows).
    pub detail: Option<String>,
}

impl Step {
    /// A step that happened once at `at`.
    pub fn new(at: UnixTime, kind: StepKind, outcome: Outcome) -> Self {
        Self {
            at,
            since: at,
            count: 1,
            kind,
            outcome,
            error: None,
            description: None,
            detail: None,
        }
    }

    /// With the RFC error code and description returned to the client.
    pub fn error(mut self, code: &str, description: &str) -> Self {
        self.error = Some(clip(code));
        self.description = Some(clip(description)).filter(|d| !d.is_empty());
        self
    }

    /// With a small detail (never a secret).
    pub fn detail(mut self, detail: impl AsRef<str>) -> Self {
        self.detail = Some(clip(detail.as_ref())).filter(|d| !d.is_empty());
        self
    }

    /// Whether `other` repeats this step (same step, outcome, error and
    /// description), so the two are kept as one entry.
    fn repeats(&self, other: &Step) -> bool {
        self.kind == other.kind
            && self.outcome == other.outcome
            && self.error == other.error
            && self.description == other.description
    }
}

/// The most recent error of a client, whatever its step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastError {
    pub at: UnixTime,
    pub kind: StepKind,
    pub error: String,
    pub description: Option<String>,
}

/// One client's timeline, as the Registry stores it (tree `timelines`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    /// Oldest first.
    pub steps: Vec<Step>,
    pub first_gateway_call_at: Option<UnixTime>,
    pub last_gateway_call_at: Option<UnixTime>,
    pub last_error: Option<LastError>,
}

impl Timeline {
    /// Adds `step` (or counts it into the last entry when it repeats it),
    /// then forgets what is older than `keep_seconds` before `step.at` and
    /// what is beyond [`MAX_STEPS`].
    pub fn record(&mut self, step: Step, keep_seconds: i64) {
        if let Some(code) = &step.error {
            self.last_error = Some(LastError {
                at: step.at,
                kind: step.kind,
                error: code.clone(),
                description: step.description.clone(),
            });
        }
        match self.steps.last_mut() {
            Some(last) if last.repeats(&step) => {
                last.at = last.at.max(step.at);
                last.count = last.count.saturating_add(1);
                last.detail = step.detail;
            }
            _ => self.steps.push(step.clone()),
        }
        self.prune(step.at, keep_seconds);
    }

    /// Notes a call through the gateway at `now`; the first one is also a
    /// step. Answers whether anything changed.
    pub fn gateway_call(&mut self, now: UnixTime, keep_seconds: i64) -> bool {
        if self.first_gateway_call_at.is_none() {
            self.first_gateway_call_at = Some(now);
            self.last_gateway_call_at = Some(now);
            let first = Step::new(now, StepKind::GatewayCall, Outcome::Ok).detail("first call");
            self.record(first, keep_seconds);
            return true;
        }
        if self.last_gateway_call_at.is_some_and(|t| t >= now) {
            return false;
        }
        self.last_gateway_call_at = Some(now);
        true
    }

    /// Forgets steps (and a last error) older than `keep_seconds` before
    /// `now`, and the oldest steps beyond [`MAX_STEPS`].
    pub fn prune(&mut self, now: UnixTime, keep_seconds: i64) {
        let oldest = now.saturating_sub(keep_seconds);
        self.steps.retain(|s| s.at >= oldest);
        if self.steps.len() > MAX_STEPS {
            let extra = self.steps.len() - MAX_STEPS;
            self.steps.drain(..extra);
        }
        if self.last_error.as_ref().is_some_and(|e| e.at < oldest) {
            self.last_error = None;
        }
    }
}

/// `text` cut to [`MAX_TEXT`] characters, control characters removed.
fn clip(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(MAX_TEXT)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEEK: i64 = 7 * 86_400;

    fn refresh(at: i64) -> Step {
        Step::new(at, StepKind::Refresh, Outcome::Ok)
    }

    #[test]
    fn a_timeline_keeps_the_last_fifty_steps_in_order() {
        let mut t = Timeline::default();
        for i in 0..120 {
            let kind = if i % 2 == 0 {
                StepKind::Authorize
            } else {
                StepKind::Consent
            };
            t.record(Step::new(1_000 + i, kind, Outcome::Ok), WEEK);
        }
        assert_eq!(t.steps.len(), MAX_STEPS);
        assert_eq!(t.steps.first().unwrap().at, 1_000 + 120 - MAX_STEPS as i64);
        assert_eq!(t.steps.last().unwrap().at, 1_119);
        assert!(t.steps.windows(2).all(|w| w[0].at < w[1].at));
    }

    #[test]
    fn steps_older_than_the_kept_age_are_forgotten() {
        let mut t = Timeline::default();
        t.record(
            Step::new(0, StepKind::Authorize, Outcome::Error).error("invalid_request", "bad"),
            WEEK,
        );
        t.record(Step::new(10, StepKind::Registered, Outcome::Ok), WEEK);
        t.record(refresh(WEEK + 5), WEEK);
        let kinds: Vec<_> = t.steps.iter().map(|s| s.kind).collect();
        assert_eq!(kinds, [StepKind::Registered, StepKind::Refresh]);
        assert!(
            t.last_error.is_none(),
            "the week-old error went with its step"
        );
        t.prune(2 * WEEK + 11, WEEK);
        assert!(t.steps.is_empty());
    }

    #[test]
    fn consecutive_successful_refreshes_are_one_entry_with_a_count() {
        let mut t = Timeline::default();
        t.record(Step::new(1, StepKind::CodeExchange, Outcome::Ok), WEEK);
        for hour in 1..=150 {
            t.record(refresh(hour * 3600), WEEK);
        }
        assert_eq!(t.steps.len(), 2, "{t:?}");
        let r = &t.steps[1];
        assert_eq!((r.count, r.since, r.at), (150, 3600, 150 * 3600));
        // A failed refresh is its own entry, and the last error.
        let failed = Step::new(150 * 3600 + 1, StepKind::Refresh, Outcome::Error)
            .error("invalid_grant", "refresh token reused");
        t.record(failed, WEEK);
        assert_eq!(t.steps.len(), 3);
        assert_eq!(t.last_error.as_ref().unwrap().error, "invalid_grant");
    }

    #[test]
    fn repeats_with_another_description_stay_apart() {
        let mut t = Timeline::default();
        let refused = |at, why| {
            Step::new(at, StepKind::Authorize, Outcome::Error).error("invalid_request", why)
        };
        t.record(refused(1, "plain PKCE"), WEEK);
        t.record(refused(2, "redirect_uri not registered"), WEEK);
        t.record(refused(3, "redirect_uri not registered"), WEEK);
        assert_eq!(t.steps.len(), 2);
        assert_eq!((t.steps[1].count, t.steps[1].since), (2, 2));
    }

    #[test]
    fn only_the_first_gateway_call_is_a_step() {
        let mut t = Timeline::default();
        assert!(t.gateway_call(100, WEEK));
        assert!(t.gateway_call(160, WEEK));
        assert!(!t.gateway_call(160, WEEK), "nothing new at the same second");
        assert_eq!(t.steps.len(), 1);
        assert_eq!(t.steps[0].kind, StepKind::GatewayCall);
        assert_eq!(
            (t.first_gateway_call_at, t.last_gateway_call_at),
            (Some(100), Some(160))
        );
    }

    #[test]
    fn long_or_odd_text_is_clipped() {
        let s = Step::new(1, StepKind::Authorize, Outcome::Error)
            .error("invalid_request", &format!("a\nb{}", "x".repeat(500)));
        let d = s.description.unwrap();
        assert_eq!(d.chars().count(), MAX_TEXT);
        assert!(d.starts_with("abx"));
    }
}
