//! The TokenBroker's read side: token lookups on the caller's thread from
//! the shared store (see `actors::handle`). Every read-check-write (code
//! redemption, refresh rotation, revocation) stays on the actor.

use crate::actors::handle::Reads;
use crate::domain::SecretToken;
use crate::storage::{codec, ReadStore, SharedStore, Tree};

use std::collections::HashSet;

use super::messages::{IntrospectToken, PeekRefresh, ReferencedSubjects};
use super::records::{CodeRecord, GrantRecord, TokenKind, TokenRecord};
use super::BrokerError;

pub struct BrokerReader {
    store: ReadStore,
}

impl BrokerReader {
    pub fn new(store: SharedStore) -> Self {
        Self {
            store: ReadStore::new(store),
        }
    }

    /// Whether a sign-in is still pending under this key (its state's hash),
    /// expired or not.
    pub fn has_transaction(&self, key: &[u8]) -> Result<bool, BrokerError> {
        Ok(self.store.get(Tree::Transactions, key)?.is_some())
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

impl Reads<ReferencedSubjects> for BrokerReader {
    /// Every user some grant or unredeemed code still names. A full scan:
    /// the janitor runs it on the blocking pool, not on the actor.
    fn read(&self, _: ReferencedSubjects) -> Result<HashSet<String>, BrokerError> {
        let mut users = HashSet::new();
        let mut after: Option<Vec<u8>> = None;
        for tree in [Tree::Grants, Tree::Codes] {
            loop {
                let page = self.store.scan_prefix(tree, b"", after.as_deref(), 4096)?;
                let Some((last, _)) = page.last() else { break };
                after = Some(last.clone());
                for (_, v) in &page {
                    let user = match tree {
                        Tree::Grants => codec::decode::<GrantRecord>(tree, v).map(|g| g.user),
                        _ => codec::decode::<CodeRecord>(tree, v).map(|c| c.user),
                    };
                    if let Ok(u) = user {
                        users.insert(u);
                    }
                }
                if page.len() < 4096 {
                    break;
                }
            }
            after = None;
        }
        Ok(users)
    }
}
