//! The TokenBroker's read side: token lookups on the caller's thread from
//! a read-only view of the broker's trees (see `actors::handle`). Every read-check-write (code
//! redemption, refresh rotation, revocation) stays on the actor.

use crate::actors::handle::Reads;
use crate::clock::UnixTime;
use crate::domain::SecretToken;
use crate::storage::{codec, keys, BrokerTree, ReadOnly};

use std::collections::HashSet;

use super::messages::{
    GrantedScopes, IntrospectToken, PeekRefresh, ReferencedSubjects, GRANTED_SCOPES_SCAN,
};
use super::records::{CodeRecord, GrantRecord, TokenKind, TokenRecord};
use super::BrokerError;

/// Token lookups, answered on the caller's thread.
pub struct BrokerReader {
    trees: ReadOnly<BrokerTree>,
}

impl BrokerReader {
    pub fn new(trees: ReadOnly<BrokerTree>) -> Self {
        Self { trees }
    }

    /// Whether a sign-in is still pending under this key (its state's hash),
    /// expired or not.
    pub fn has_transaction(&self, key: &[u8]) -> Result<bool, BrokerError> {
        Ok(self.trees.get(BrokerTree::Transactions, key)?.is_some())
    }

    pub(super) fn token(&self, token: &SecretToken) -> Result<Option<TokenRecord>, BrokerError> {
        Ok(self.token_as_stored(token)?.map(|(record, _)| record))
    }

    /// A token's record and the bytes it was read from (what a conditional
    /// write expects to find).
    fn token_as_stored(
        &self,
        token: &SecretToken,
    ) -> Result<Option<(TokenRecord, Vec<u8>)>, BrokerError> {
        match self
            .trees
            .get(BrokerTree::Tokens, token.hash().as_bytes())?
        {
            Some(bytes) => Ok(Some((TokenRecord::decode(&bytes)?, bytes))),
            None => Ok(None),
        }
    }

    fn grant(&self, grant_id: &str) -> Result<Option<GrantRecord>, BrokerError> {
        match self.trees.get(BrokerTree::Grants, grant_id.as_bytes())? {
            Some(bytes) => Ok(Some(codec::decode(BrokerTree::Grants.into(), &bytes)?)),
            None => Ok(None),
        }
    }

    /// The one refresh-token validity check: what `token`, presented by
    /// `client_id` at `now`, is worth. The HTTP side asks it (through
    /// [`PeekRefresh`], answered here) before any upstream work, the core
    /// asks it again before rotating, so both give the same answer. A rotated token is
    /// handed back as such whatever its expiry: only the core decides
    /// between the grace window and revoking the family.
    pub(super) fn refreshable(
        &self,
        token: &SecretToken,
        client_id: &str,
        now: UnixTime,
    ) -> Result<Refreshable, BrokerError> {
        let Some((record, stored)) = self.token_as_stored(token)? else {
            return Err(BrokerError::InvalidGrant(
                "unknown, expired or revoked refresh token",
            ));
        };
        if record.kind != TokenKind::Refresh || record.client_id != client_id {
            return Err(BrokerError::InvalidGrant(
                "not a refresh token of this client",
            ));
        }
        if let Some(at) = record.rotated_at {
            return Ok(Refreshable::Rotated { record, at });
        }
        if record.expires_at <= now {
            return Err(BrokerError::InvalidGrant("the refresh token expired"));
        }
        let Some(grant) = self.grant(&record.grant_id)? else {
            return Err(BrokerError::InvalidGrant("the sign-in was revoked"));
        };
        if grant.expires_at <= now {
            return Err(BrokerError::InvalidGrant(
                "the sign-in reached its maximum lifetime",
            ));
        }
        Ok(Refreshable::Live {
            record,
            grant,
            stored,
        })
    }
}

/// A refresh token of the presenting client that [`BrokerReader::refreshable`]
/// did not refuse.
pub(super) enum Refreshable {
    /// Unused, unexpired, its sign-in alive: it may be rotated.
    Live {
        record: TokenRecord,
        grant: GrantRecord,
        /// The bytes `record` was read from: its rotation is a conditional
        /// write over exactly these.
        stored: Vec<u8>,
    },
    /// Already exchanged (at `at`): a duplicate inside the grace window, or
    /// a reuse that revokes the family.
    Rotated { record: TokenRecord, at: UnixTime },
}

impl Refreshable {
    pub(super) fn record(self) -> TokenRecord {
        match self {
            Refreshable::Live { record, .. } | Refreshable::Rotated { record, .. } => record,
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
    /// A refresh token of `client_id` that the core would rotate (or judge
    /// as a duplicate or a reuse), without using it.
    fn read(&self, msg: PeekRefresh) -> Result<TokenRecord, BrokerError> {
        self.refreshable(&msg.refresh_token, &msg.client_id, msg.now)
            .map(Refreshable::record)
    }
}

impl Reads<GrantedScopes> for BrokerReader {
    /// The union of the scopes of `user`'s unexpired grants of the client.
    fn read(&self, msg: GrantedScopes) -> Result<Vec<String>, BrokerError> {
        let prefix = keys::pair(&msg.client_id, b"");
        let limit = GRANTED_SCOPES_SCAN + 1;
        let grants = self
            .trees
            .scan_prefix(BrokerTree::ClientGrants, &prefix, None, limit)?;
        let mut scopes: Vec<String> = Vec::new();
        if grants.len() == limit {
            return Ok(scopes);
        }
        for (k, _) in &grants {
            let grant_id = String::from_utf8_lossy(&k[prefix.len()..]);
            let Some(grant) = self.grant(&grant_id)? else {
                continue;
            };
            if grant.user != msg.user || grant.expires_at <= msg.now {
                continue;
            }
            for scope in grant.scopes {
                if !scopes.contains(&scope) {
                    scopes.push(scope);
                }
            }
        }
        Ok(scopes)
    }
}

impl Reads<ReferencedSubjects> for BrokerReader {
    /// Every user some grant or unredeemed code still names. A full scan:
    /// the janitor runs it on the blocking pool, not on the actor.
    fn read(&self, _: ReferencedSubjects) -> Result<HashSet<String>, BrokerError> {
        let mut users = HashSet::new();
        let mut after: Option<Vec<u8>> = None;
        for tree in [BrokerTree::Grants, BrokerTree::Codes] {
            loop {
                let page = self.trees.scan_prefix(tree, b"", after.as_deref(), 4096)?;
                let Some((last, _)) = page.last() else { break };
                after = Some(last.clone());
                for (_, v) in &page {
                    let user = match tree {
                        BrokerTree::Grants => {
                            codec::decode::<GrantRecord>(tree.into(), v).map(|g| g.user)
                        }
                        _ => codec::decode::<CodeRecord>(tree.into(), v).map(|c| c.user),
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
