//! The TokenBroker's read side: token lookups on the caller's thread from
//! the shared store (see `actors::handle`). Every read-check-write (code
//! redemption, refresh rotation, revocation) stays on the actor.

use crate::actors::handle::Reads;
use crate::domain::SecretToken;
use crate::storage::{codec, SharedStore, Tree};

use super::messages::{IntrospectToken, PeekRefresh};
use super::records::{TokenKind, TokenRecord};
use super::BrokerError;

pub struct BrokerReader {
    store: SharedStore,
}

impl BrokerReader {
    pub fn new(store: SharedStore) -> Self {
        Self { store }
    }

    pub(super) fn token(&self, token: &SecretToken) -> Result<Option<TokenRecord>, BrokerError> {
        match self.store.get(Tree::Tokens, token.hash().as_bytes())? {
            Some(bytes) => Ok(Some(codec::decode(Tree::Tokens, &bytes)?)),
            None => Ok(None),
        }
    }
}

impl Reads<IntrospectToken> for BrokerReader {
    /// A live token's record (RFC 7662 `active`), or `None`.
    fn read(&self, msg: IntrospectToken) -> Result<Option<TokenRecord>, BrokerError> {
        Ok(self
            .token(&msg.token)?
            .filter(|r| r.expires_at > msg.now && r.rotated_at.is_none()))
    }
}

impl Reads<PeekRefresh> for BrokerReader {
    /// A live refresh token of `client_id`, without using it.
    fn read(&self, msg: PeekRefresh) -> Result<TokenRecord, BrokerError> {
        match self.token(&msg.refresh_token)? {
            Some(r) if r.kind == TokenKind::Refresh && r.client_id == msg.client_id => Ok(r),
            _ => Err(BrokerError::InvalidGrant("unknown refresh token")),
        }
    }
}
