//! The TokenBroker owns the login flow's state: pending transactions,
//! authorization codes, grants and Drawbridge's access and refresh tokens
//! (stored only as SHA-256 hashes), in its own trees
//! ([`BrokerTree`](crate::storage::BrokerTree)). [`TokenBrokerCore`] holds
//! the logic; [`TokenBroker`] runs it on its own thread. Token lookups
//! ([`IntrospectToken`], [`PeekRefresh`], [`ReferencedSubjects`],
//! [`GrantedScopes`]) are
//! answered by [`BrokerReader`] on the caller's thread and have no handler
//! here.

mod core;
pub mod messages;
mod reader;
pub mod records;
pub mod successor;

use actix::{Actor, Handler, SyncContext};

pub use self::core::{TokenBrokerCore, TokenPolicy, ACCESS_PREFIX, REFRESH_PREFIX};
pub use messages::*;
pub use reader::BrokerReader;
pub use records::*;
pub use successor::SuccessorKey;

use crate::storage::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("{0}")]
    InvalidGrant(&'static str),
    /// A used code or rotated refresh token came back: the family is revoked.
    #[error("{0}")]
    Reuse(&'static str),
    #[error("the requested resource is not this server's resource")]
    InvalidTarget,
    #[error("the requested scope exceeds what was granted")]
    InvalidScope,
    #[error("the sign-in expired or was already completed")]
    UnknownTransaction,
    #[error("the consent form is invalid or was already submitted")]
    Csrf,
    /// The callback came from a browser other than the one that approved
    /// the consent (or the sign-in predates the browser binding). The
    /// transaction is consumed.
    #[error("the sign-in was approved in another browser")]
    WrongBrowser(Box<AuthTransaction>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The actor: runs [`TokenBrokerCore`] on its own thread.
pub struct TokenBroker {
    core: TokenBrokerCore,
}

impl TokenBroker {
    pub fn new(core: TokenBrokerCore) -> Self {
        Self { core }
    }
}

impl crate::actors::handle::HasReader for TokenBroker {
    type Reader = BrokerReader;
}

impl Actor for TokenBroker {
    type Context = SyncContext<Self>;
}

macro_rules! delegate {
    ($msg:ty, $method:ident) => {
        impl Handler<$msg> for TokenBroker {
            type Result = <$msg as actix::Message>::Result;

            fn handle(&mut self, msg: $msg, _: &mut Self::Context) -> Self::Result {
                self.core.$method(msg)
            }
        }

        $crate::track_writes!(TokenBroker: $msg);
    };
}

delegate!(BeginAuthorization, begin);
delegate!(DecideConsent, decide);
delegate!(CompleteTransaction, complete);
delegate!(IssueCode, issue_code);
delegate!(RedeemCode, redeem);
delegate!(RefreshTokens, refresh);
delegate!(RevokeToken, revoke);
delegate!(PurgeTokens, purge_expired);
delegate!(RevokeClientGrants, revoke_client);
delegate!(ClientTokenCounts, client_counts);
delegate!(GrantsPerSubject, grants_per_subject);
delegate!(RevokeSubjectGrants, revoke_subject);
delegate!(ClientSubjects, client_subjects);

impl Handler<RevokeGrant> for TokenBroker {
    type Result = Result<usize, BrokerError>;

    fn handle(&mut self, msg: RevokeGrant, _: &mut Self::Context) -> Self::Result {
        self.core.revoke_grant_tokens(&msg.grant_id)
    }
}

crate::track_writes!(TokenBroker: RevokeGrant);

#[cfg(test)]
mod tests;
