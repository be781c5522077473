//! The flows of the product, independent of HTTP: each takes typed input,
//! talks to the actors and the upstream provider, and answers a typed
//! result or a typed error. The HTTP handlers parse, call one function
//! here, and render.
//!
//! - [`signin`]: authorize → consent → upstream callback.
//! - [`tokens`]: code exchange, refresh, revocation, introspection.
//! - [`session`]: the user's upstream (Google) session — a fresh upstream
//!   token, one upstream refresh per user at a time.
//! - [`clients`]: client registration and administration.
//! - [`access`]: who may sign in (the `[access]` lists, reloaded on SIGHUP).
//! - [`certificates`]: the ACME certificate, kept and renewed.
//! - [`timeline`]: each client's connection timeline, for operators.
//! - [`error`]: the one error every flow answers, [`ServiceError`].

pub mod access;
pub mod certificates;
pub mod clients;
pub mod error;
pub mod session;
pub mod signin;
pub mod timeline;
pub mod tokens;

use std::sync::Arc;

use crate::actors::handle::Handle;
use crate::actors::registry::Registry;
use crate::actors::token_broker::TokenBroker;
use crate::actors::vault::Vault;
use crate::cimd::DocumentCache;
use crate::clock::Clock;
use crate::configuration::Config;
use crate::rate_limit::RateLimits;
use crate::upstream::Upstream;

pub use error::{Answered, ServiceError};

/// What the flows reach: the actors, the upstream provider, the limits and
/// the clock. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub config: Arc<Config>,
    pub registry: Handle<Registry>,
    pub vault: Handle<Vault>,
    pub broker: Handle<TokenBroker>,
    pub upstream: Arc<Upstream>,
    /// One upstream refresh per user at a time.
    pub flights: Arc<crate::single_flight::SingleFlight>,
    /// Several instances on one database: the leases by which one instance
    /// alone refreshes a user's upstream token (`None`: a single instance).
    pub leases: Option<crate::storage::Owned<crate::storage::LeaseTree>>,
    pub limits: Arc<RateLimits>,
    /// Client ID Metadata Documents, fetched and kept.
    pub cimd: Arc<DocumentCache>,
    /// Who may sign in, checked at sign-in, at the gateway and at refresh.
    pub access: Arc<access::AccessLists>,
    /// Signs the cookie that names a returning browser's user.
    pub browser_key: Arc<signin::BrowserKey>,
    /// When each client's gateway calls were last written to its timeline.
    pub timeline: Arc<timeline::GatewaySampler>,
    pub clock: Clock,
}
