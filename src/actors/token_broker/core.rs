//! The TokenBroker's state machine over its own trees, with no actix. Runs
//! on one thread, so every read-check-write is atomic with respect to other
//! requests: two redemptions of one code, or two uses of one refresh token,
//! are serialised and only one wins (outside the grace rule). The sign-in
//! steps live here; code exchange and rotation, revocation, the purge and
//! the operators' counts in the child modules.

mod exchange;
mod purge;
mod revoke;
mod stats;

use crate::clock::UnixTime;
use crate::domain::SecretToken;
use crate::storage::{codec, BrokerTree, Owned, OwnedBatch, StoreError};

use super::messages::*;
use super::reader::BrokerReader;
use super::records::*;
use super::successor::SuccessorKey;
use super::BrokerError;

pub use self::exchange::{ACCESS_PREFIX, REFRESH_PREFIX};
const CODE_PREFIX: &str = "mcp_code_";

/// Lifetimes and rules the broker applies.
#[derive(Debug, Clone, Copy)]
pub struct TokenPolicy {
    pub transaction_ttl: i64,
    pub code_ttl: i64,
    pub access_ttl: i64,
    pub refresh_idle: i64,
    pub grant_lifetime: i64,
    pub refresh_grace: i64,
    pub flush_every_write: bool,
}

/// The TokenBroker's logic over its own trees; the actor runs it on one
/// thread (see the module's comment).
pub struct TokenBrokerCore {
    trees: Owned<BrokerTree>,
    policy: TokenPolicy,
    /// Seals the pair a refresh token was rotated into, kept in the rotated
    /// record for the grace window (see `successor`).
    successor: SuccessorKey,
    /// The lookups the HTTP side also makes, over the same trees.
    reader: BrokerReader,
}

/// Key of a record named by a secret (state, code, token): its SHA-256.
fn hash_key(token: &SecretToken) -> Vec<u8> {
    token.hash().as_bytes().to_vec()
}

impl TokenBrokerCore {
    pub fn new(trees: Owned<BrokerTree>, policy: TokenPolicy) -> Self {
        Self {
            reader: BrokerReader::new(trees.read_only()),
            trees,
            policy,
            successor: SuccessorKey::random(),
        }
    }

    /// Seals rotated refresh tokens' successors under `key` (derived from
    /// the key file, so every instance sharing it opens them); without it
    /// a process-local key is used.
    pub fn with_successor_key(mut self, key: SuccessorKey) -> Self {
        self.successor = key;
        self
    }

    fn get<T: Stored>(&self, tree: BrokerTree, key: &[u8]) -> Result<Option<T>, BrokerError> {
        Ok(self.get_as_stored(tree, key)?.map(|(record, _)| record))
    }

    /// A record and the bytes it was read from: a change that must happen
    /// once is a conditional write ([`OwnedBatch::swap`]) over exactly
    /// those bytes, so another instance sharing the database that changed
    /// the record first makes it fail instead of being overwritten.
    fn get_as_stored<T: Stored>(
        &self,
        tree: BrokerTree,
        key: &[u8],
    ) -> Result<Option<(T, Vec<u8>)>, BrokerError> {
        match self.trees.get(tree, key)? {
            Some(bytes) => Ok(Some((T::decode_stored(tree.into(), &bytes)?, bytes))),
            None => Ok(None),
        }
    }

    /// Writes `batch` in order, each write atomic: used where the batch is
    /// ordered so that a crash part-way leaves only unreachable records
    /// (new tokens nobody was given) and the write that takes effect —
    /// a code marked used, a refresh token marked rotated — comes last.
    fn commit_in_order(&self, batch: OwnedBatch<BrokerTree>) -> Result<(), BrokerError> {
        self.trees.apply_in_order(batch)?;
        if self.policy.flush_every_write {
            self.trees.flush()?;
        }
        Ok(())
    }

    fn commit(&self, batch: OwnedBatch<BrokerTree>) -> Result<(), BrokerError> {
        self.trees.apply(batch)?;
        if self.policy.flush_every_write {
            self.trees.flush()?;
        }
        Ok(())
    }

    pub fn begin(&mut self, msg: BeginAuthorization) -> Result<Begun, BrokerError> {
        let state = SecretToken::generate("");
        let csrf = SecretToken::generate("");
        let r = msg.request;
        let txn = AuthTransaction {
            client_id: r.client_id,
            redirect_uri: r.redirect_uri,
            client_state: r.client_state,
            code_challenge: r.code_challenge,
            scopes: r.scopes,
            resource: r.resource,
            csrf_hash: csrf.hash(),
            approved: false,
            upstream_client_id: r.upstream_client_id,
            created_at: msg.now,
            expires_at: msg.now + self.policy.transaction_ttl,
            browser_hash: None,
        };
        let mut batch = OwnedBatch::new();
        batch.insert(BrokerTree::Transactions, hash_key(&state), txn.encode()?);
        self.commit(batch)?;
        Ok(Begun { state, csrf })
    }

    /// A pending sign-in and the bytes it was read from.
    fn live_transaction(
        &self,
        state: &SecretToken,
        now: UnixTime,
    ) -> Result<(AuthTransaction, Vec<u8>), BrokerError> {
        match self.get_as_stored::<AuthTransaction>(BrokerTree::Transactions, &hash_key(state))? {
            Some((t, stored)) if t.expires_at > now => Ok((t, stored)),
            _ => Err(BrokerError::UnknownTransaction),
        }
    }

    /// [`commit`](Self::commit) where a conflict (another instance changed
    /// the record first) means `lost`.
    fn commit_or(
        &self,
        batch: OwnedBatch<BrokerTree>,
        lost: BrokerError,
    ) -> Result<(), BrokerError> {
        match self.commit(batch) {
            Err(BrokerError::Store(StoreError::Conflict { .. })) => Err(lost),
            other => other,
        }
    }

    /// The person's answer on the consent page.
    pub fn decide(&mut self, msg: DecideConsent) -> Result<AuthTransaction, BrokerError> {
        let (mut txn, stored) = self.live_transaction(&msg.state, msg.now)?;
        if !txn.csrf_hash.verify(&msg.csrf) || txn.approved {
            return Err(BrokerError::Csrf);
        }
        let new = if msg.approve {
            txn.approved = true;
            txn.browser_hash = Some(msg.browser);
            Some(txn.encode()?)
        } else {
            None
        };
        // Once: a second answer (on another instance) finds it changed.
        let mut batch = OwnedBatch::new();
        batch.swap(
            BrokerTree::Transactions,
            hash_key(&msg.state),
            Some(stored),
            new,
        );
        self.commit_or(batch, BrokerError::Csrf)?;
        Ok(txn)
    }

    /// Takes an approved transaction at the upstream callback (single use),
    /// from the browser that approved it only. A callback from any other
    /// browser consumes the transaction too: a sign-in link sent to someone
    /// else is dead once refused.
    pub fn complete(&mut self, msg: CompleteTransaction) -> Result<AuthTransaction, BrokerError> {
        let (txn, stored) = self.live_transaction(&msg.state, msg.now)?;
        if !txn.approved {
            return Err(BrokerError::UnknownTransaction);
        }
        // Single use across instances: only one callback takes it.
        let mut batch = OwnedBatch::new();
        batch.swap(
            BrokerTree::Transactions,
            hash_key(&msg.state),
            Some(stored),
            None,
        );
        self.commit_or(batch, BrokerError::UnknownTransaction)?;
        let bound = match (&txn.browser_hash, &msg.browser) {
            (Some(hash), Some(cookie)) => hash.verify(cookie),
            _ => false,
        };
        if !bound {
            return Err(BrokerError::WrongBrowser(Box::new(txn)));
        }
        Ok(txn)
    }

    pub fn issue_code(&mut self, msg: IssueCode) -> Result<SecretToken, BrokerError> {
        let code = SecretToken::generate(CODE_PREFIX);
        let t = msg.transaction;
        let record = CodeRecord {
            client_id: t.client_id,
            redirect_uri: t.redirect_uri,
            code_challenge: t.code_challenge,
            scopes: t.scopes,
            resource: t.resource,
            user: msg.user,
            issued_at: msg.now,
            expires_at: msg.now + self.policy.code_ttl,
            redeemed_by: None,
        };
        let mut batch = OwnedBatch::new();
        batch.insert(BrokerTree::Codes, hash_key(&code), codec::encode(&record)?);
        self.commit(batch)?;
        Ok(code)
    }
}
