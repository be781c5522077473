//! The one error of the flows: [`ServiceError`], an RFC error code with a
//! description and the [`ErrorKind`] that says how the refusal is answered.
//!
//! It carries everything the HTTP side needs and nothing of HTTP itself:
//! `http::errors` turns it into a status, the `WWW-Authenticate` challenge
//! ([`ServiceError::challenge`]) and `Retry-After`, in one place. The
//! conversions from the actors' and the upstream's errors live here too, so
//! a flow writes `?` and the refusal is the same wherever it happens:
//!
//! - [`CallError`] (an actor's mailbox, or a write that could not be made
//!   durable), [`actix::MailboxError`], [`StoreError`] → 503
//!   `temporarily_unavailable` with `Retry-After`, the cause logged;
//! - [`RegistryError`], [`BrokerError`], [`VaultError`] → their RFC codes
//!   (a storage failure among them as [`CallError`]);
//! - [`UpstreamError`] and [`Freshness`] → `invalid_grant` when the
//!   identity provider refused the grant or withdrew access,
//!   `invalid_request` for its other refusals, 503 (without `Retry-After`)
//!   when it cannot be reached.
//!
//! Descriptions are shown to the caller: never put a secret in one.

use std::borrow::Cow;
use std::fmt;

use crate::actors::handle::CallError;
use crate::actors::registry::RegistryError;
use crate::actors::token_broker::BrokerError;
use crate::actors::vault::VaultError;
use crate::domain::{ErrorCode, MetadataError};
use crate::service::session::{CredentialsError, Freshness};
use crate::storage::StoreError;
use crate::upstream::UpstreamError;

/// A refused request: what went wrong ([`code`](Self::code),
/// [`description`](Self::description)) and how to answer it
/// ([`kind`](Self::kind)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    pub code: ErrorCode,
    pub description: Cow<'static, str>,
    pub kind: ErrorKind,
}

/// How a refusal is answered; each maps to one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request itself is wrong (400).
    Invalid,
    /// The caller did not prove who it is (401, with the challenge of
    /// [`ServiceError::challenge`]).
    Unauthenticated,
    /// The caller is known but may not do this (403).
    Forbidden,
    /// Nothing by that name (404).
    NotFound,
    /// The request conflicts with the state of the server (409).
    Conflict,
    /// Too many requests or failed attempts; retry after this many seconds (429).
    RateLimited { retry_after: u64 },
    /// Something the flow needs cannot answer now (503); `retry_after` when
    /// a retry in that many seconds is expected to work.
    Unavailable { retry_after: Option<u64> },
    /// A fault of this server (500).
    Internal,
}

/// The authentication scheme a 401 or 403 asks for (`WWW-Authenticate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// Client credentials, RFC 6749 §2.3.1.
    Basic,
    /// A bearer token, RFC 6750 §3.
    Bearer,
}

impl ServiceError {
    pub fn new(
        kind: ErrorKind,
        code: ErrorCode,
        description: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            code,
            description: description.into(),
            kind,
        }
    }

    /// 400 with this code.
    pub fn invalid(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Invalid, code, description)
    }

    /// 400 `invalid_request`.
    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::invalid(ErrorCode::InvalidRequest, description)
    }

    /// 400 `invalid_grant`.
    pub fn invalid_grant(description: impl Into<Cow<'static, str>>) -> Self {
        Self::invalid(ErrorCode::InvalidGrant, description)
    }

    /// 401 `invalid_client` (challenge: Basic).
    pub fn invalid_client(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(
            ErrorKind::Unauthenticated,
            ErrorCode::InvalidClient,
            description,
        )
    }

    /// 401 `invalid_token` (challenge: Bearer).
    pub fn invalid_token(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(
            ErrorKind::Unauthenticated,
            ErrorCode::InvalidToken,
            description,
        )
    }

    /// 403 `insufficient_scope` (challenge: Bearer).
    pub fn insufficient_scope(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(
            ErrorKind::Forbidden,
            ErrorCode::InsufficientScope,
            description,
        )
    }

    /// 404 `not_found`.
    pub fn not_found(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::NotFound, ErrorCode::NotFound, description)
    }

    /// 429 `temporarily_unavailable`, to retry in `retry_after` seconds.
    pub fn rate_limited(retry_after: u64, description: impl Into<Cow<'static, str>>) -> Self {
        let kind = ErrorKind::RateLimited { retry_after };
        Self::new(kind, ErrorCode::TemporarilyUnavailable, description)
    }

    /// 503 `temporarily_unavailable` without `Retry-After`: a dependency
    /// (the identity provider, a cap) that may take a while.
    pub fn unavailable(description: impl Into<Cow<'static, str>>) -> Self {
        let kind = ErrorKind::Unavailable { retry_after: None };
        Self::new(kind, ErrorCode::TemporarilyUnavailable, description)
    }

    /// 503 with `Retry-After: 1`: an actor or the disk could not take the
    /// request now (nothing was acknowledged; the client may retry). Logs
    /// the cause, which the caller never sees.
    pub fn storage(cause: impl fmt::Display) -> Self {
        tracing::error!(error = %cause, "request refused: storage or actor unavailable");
        Self::new(
            ErrorKind::Unavailable {
                retry_after: Some(1),
            },
            ErrorCode::TemporarilyUnavailable,
            "the server cannot store this change right now; try again shortly",
        )
    }

    /// 500 `server_error`; log the cause where it happens.
    pub fn server_error() -> Self {
        Self::new(
            ErrorKind::Internal,
            ErrorCode::ServerError,
            "the server could not complete the request",
        )
    }

    /// The same refusal with another description.
    pub fn describe(mut self, description: impl Into<Cow<'static, str>>) -> Self {
        self.description = description.into();
        self
    }

    /// The scheme a 401 or 403 challenges for: Basic for a client's
    /// credentials, Bearer for a token; `None` for other refusals.
    pub fn challenge(&self) -> Option<Challenge> {
        if !matches!(self.kind, ErrorKind::Unauthenticated | ErrorKind::Forbidden) {
            return None;
        }
        match self.code {
            ErrorCode::InvalidClient => Some(Challenge::Basic),
            _ => Some(Challenge::Bearer),
        }
    }

    /// Seconds for `Retry-After`, when a retry is expected to work.
    pub fn retry_after(&self) -> Option<u64> {
        match self.kind {
            ErrorKind::RateLimited { retry_after } => Some(retry_after),
            ErrorKind::Unavailable { retry_after } => retry_after,
            _ => None,
        }
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.description)
    }
}

impl std::error::Error for ServiceError {}

impl From<CallError> for ServiceError {
    fn from(e: CallError) -> Self {
        Self::storage(e)
    }
}

impl From<actix::MailboxError> for ServiceError {
    fn from(e: actix::MailboxError) -> Self {
        Self::storage(e)
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        Self::storage(e)
    }
}

impl From<MetadataError> for ServiceError {
    fn from(e: MetadataError) -> Self {
        let code = match e {
            MetadataError::RedirectUri(_) => ErrorCode::InvalidRedirectUri,
            MetadataError::Invalid(_) => ErrorCode::InvalidClientMetadata,
        };
        Self::invalid(code, e.to_string())
    }
}

impl From<RegistryError> for ServiceError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::InvalidToken => Self::invalid_token(e.to_string()),
            RegistryError::InvalidClient => Self::invalid_client(e.to_string()),
            RegistryError::Metadata(m) => m.into(),
            RegistryError::Full(_) => Self::unavailable(e.to_string()),
            RegistryError::TooManyUnused(_) => Self::rate_limited(60, e.to_string()),
            RegistryError::Store(store) => Self::storage(store),
        }
    }
}

impl From<BrokerError> for ServiceError {
    fn from(e: BrokerError) -> Self {
        match e {
            BrokerError::InvalidGrant(d) | BrokerError::Reuse(d) => Self::invalid_grant(d),
            BrokerError::InvalidTarget => Self::invalid(ErrorCode::InvalidTarget, e.to_string()),
            BrokerError::InvalidScope => Self::invalid(ErrorCode::InvalidScope, e.to_string()),
            BrokerError::Store(store) => Self::storage(store),
            other => Self::invalid_request(other.to_string()),
        }
    }
}

impl From<VaultError> for ServiceError {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::TooLarge => Self::invalid_request(e.to_string()),
            // A record that cannot be opened, like a failed disk: nothing
            // was acknowledged, and the cause is logged.
            other => Self::storage(other),
        }
    }
}

impl From<UpstreamError> for ServiceError {
    fn from(e: UpstreamError) -> Self {
        match e {
            UpstreamError::Rejected { error, description } if error == "invalid_grant" => {
                Self::invalid_grant(description)
            }
            UpstreamError::Rejected { error, .. } => {
                Self::invalid_request(format!("the identity provider answered {error}"))
            }
            UpstreamError::Unavailable(_) => {
                Self::unavailable("the identity provider is unavailable; try again")
            }
        }
    }
}

impl From<CredentialsError> for ServiceError {
    fn from(e: CredentialsError) -> Self {
        match e {
            // Logged where it happened (service::session::credentials).
            CredentialsError::Unavailable => Self::new(
                ErrorKind::Unavailable {
                    retry_after: Some(1),
                },
                e.code(),
                e.description(),
            ),
            CredentialsError::Unreadable => Self::server_error(),
            CredentialsError::NotConfigured => Self::unavailable(e.description()),
        }
    }
}

impl From<Freshness> for ServiceError {
    fn from(f: Freshness) -> Self {
        match f {
            Freshness::Revoked => {
                Self::invalid_grant("access was withdrawn at the identity provider; sign in again")
            }
            Freshness::Unavailable => {
                Self::unavailable("the identity provider is unavailable; try again")
            }
            Freshness::NotAllowed { .. } => {
                Self::invalid_grant("this account is no longer allowed to use this service")
            }
        }
    }
}

/// An actor's answer as one `Result`: the call's own failure
/// ([`CallError`]) and the actor's error both become a [`ServiceError`].
pub trait Answered<T> {
    fn answered(self) -> Result<T, ServiceError>;
}

impl<T, E: Into<ServiceError>> Answered<T> for Result<Result<T, E>, CallError> {
    fn answered(self) -> Result<T, ServiceError> {
        self?.map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_basic_for_clients_and_bearer_for_tokens_and_only_on_401_or_403() {
        let client = ServiceError::invalid_client("x");
        assert_eq!(client.challenge(), Some(Challenge::Basic));
        assert_eq!(
            ServiceError::invalid_token("x").challenge(),
            Some(Challenge::Bearer)
        );
        let scope = ServiceError::insufficient_scope("x");
        assert_eq!(scope.challenge(), Some(Challenge::Bearer));
        assert_eq!(ServiceError::invalid_grant("x").challenge(), None);
    }

    #[test]
    fn retry_after_is_given_for_rate_limits_and_storage_but_not_for_the_upstream() {
        assert_eq!(ServiceError::rate_limited(7, "x").retry_after(), Some(7));
        assert_eq!(ServiceError::storage("disk").retry_after(), Some(1));
        assert_eq!(ServiceError::unavailable("x").retry_after(), None);
        let upstream = ServiceError::from(UpstreamError::Unavailable("down".into()));
        assert_eq!(upstream.code, ErrorCode::TemporarilyUnavailable);
        assert_eq!(upstream.retry_after(), None);
    }

    #[test]
    fn a_reused_token_is_invalid_grant_and_a_registry_cap_is_429() {
        let reuse = ServiceError::from(BrokerError::Reuse("reused"));
        assert_eq!(
            (reuse.code, reuse.kind),
            (ErrorCode::InvalidGrant, ErrorKind::Invalid)
        );
        let capped = ServiceError::from(RegistryError::TooManyUnused(3));
        assert_eq!(capped.kind, ErrorKind::RateLimited { retry_after: 60 });
    }
}
