//! Messages the TokenBroker answers; each carries `now`.

use actix::Message;

use super::records::*;
use super::BrokerError;
use crate::clock::UnixTime;
use crate::domain::{ClientId, SecretHash, SecretToken};

/// What an authorization request asked for, once validated.
#[derive(Debug, Clone)]
pub struct NewTransaction {
    pub client_id: ClientId,
    pub redirect_uri: String,
    pub client_state: String,
    pub code_challenge: String,
    pub scopes: Vec<String>,
    pub resource: Option<String>,
    pub upstream_client_id: Option<String>,
}

/// Stores a pending login; answers its state and consent CSRF token.
#[derive(Debug, Message)]
#[rtype(result = "Result<Begun, BrokerError>")]
pub struct BeginAuthorization {
    pub request: NewTransaction,
    pub now: UnixTime,
}

#[derive(Debug)]
pub struct Begun {
    pub state: SecretToken,
    pub csrf: SecretToken,
}

/// The consent page's answer, checked against the transaction's CSRF token.
#[derive(Debug, Message)]
#[rtype(result = "Result<AuthTransaction, BrokerError>")]
pub struct DecideConsent {
    pub state: SecretToken,
    pub csrf: SecretToken,
    pub approve: bool,
    /// On approval: the hash of the cookie that binds the sign-in to this
    /// browser (checked again at the callback).
    pub browser: SecretHash,
    pub now: UnixTime,
}

/// Takes an approved transaction at the upstream callback (single use: it
/// is consumed whatever the answer). Refused with
/// [`BrokerError::WrongBrowser`] unless `browser` is the cookie set in the
/// browser that approved the consent.
#[derive(Debug, Message)]
#[rtype(result = "Result<AuthTransaction, BrokerError>")]
pub struct CompleteTransaction {
    pub state: SecretToken,
    pub browser: Option<SecretToken>,
    pub now: UnixTime,
}

/// Mints the Drawbridge authorization code for a completed login.
#[derive(Debug, Message)]
#[rtype(result = "Result<SecretToken, BrokerError>")]
pub struct IssueCode {
    pub transaction: AuthTransaction,
    /// The Vault's id of the user who signed in.
    pub user: String,
    pub now: UnixTime,
}

/// The `authorization_code` grant.
#[derive(Debug, Message)]
#[rtype(result = "Result<Redeemed, BrokerError>")]
pub struct RedeemCode {
    pub code: SecretToken,
    pub client_id: ClientId,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub resource: Option<String>,
    /// Whether to mint Drawbridge tokens (not in passthrough mode).
    pub mint: bool,
    pub with_refresh: bool,
    pub now: UnixTime,
}

#[derive(Debug)]
pub struct Redeemed {
    pub pair: Option<TokenPair>,
    pub grant: GrantRecord,
}

/// Reads a refresh token without using it: refused exactly as
/// [`RefreshTokens`] would refuse it (one check, `BrokerReader::refreshable`).
#[derive(Debug, Message)]
#[rtype(result = "Result<TokenRecord, BrokerError>")]
pub struct PeekRefresh {
    pub refresh_token: SecretToken,
    pub client_id: ClientId,
    pub now: UnixTime,
}

/// The `refresh_token` grant (rotation).
#[derive(Debug, Message)]
#[rtype(result = "Result<TokenPair, BrokerError>")]
pub struct RefreshTokens {
    pub refresh_token: SecretToken,
    pub client_id: ClientId,
    pub scopes: Option<Vec<String>>,
    pub now: UnixTime,
}

/// RFC 7662: the record of a live token, or `None`.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<TokenRecord>, BrokerError>")]
pub struct IntrospectToken {
    pub token: SecretToken,
    pub now: UnixTime,
}

/// RFC 7009: answers what was revoked, if anything.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<TokenRecord>, BrokerError>")]
pub struct RevokeToken {
    pub token: SecretToken,
    /// The authenticated client; `None` for an operator.
    pub client_id: Option<ClientId>,
    pub now: UnixTime,
}

/// Revokes a grant and every token it issued.
#[derive(Debug, Message)]
#[rtype(result = "Result<usize, BrokerError>")]
pub struct RevokeGrant {
    pub grant_id: String,
}

/// Removes up to `limit` expired sign-ins, codes, tokens and grants.
#[derive(Debug, Message)]
#[rtype(result = "Result<TokenPurge, BrokerError>")]
pub struct PurgeTokens {
    pub now: UnixTime,
    /// Remove at most this many records.
    pub limit: usize,
    /// Look at most at this many records.
    pub scan: usize,
    /// Where the previous call stopped (`None`: the beginning).
    pub cursor: Option<PurgeCursor>,
}

/// A position in the purge's walk: the tree (transactions, codes, tokens,
/// grants) and the last key looked at in it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PurgeCursor {
    pub phase: u8,
    pub after: Option<Vec<u8>>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TokenPurge {
    pub transactions: usize,
    pub codes: usize,
    pub tokens: usize,
    pub grants: usize,
    /// Where the next call starts; `None` once every tree was seen.
    pub next: Option<PurgeCursor>,
}

impl TokenPurge {
    pub fn total(&self) -> usize {
        self.transactions + self.codes + self.tokens + self.grants
    }
}

/// Revokes every grant and token of these clients (deleted or expired).
#[derive(Debug, Message)]
#[rtype(result = "Result<usize, BrokerError>")]
pub struct RevokeClientGrants {
    pub client_ids: Vec<ClientId>,
}

/// The upstream subjects that grants or pending codes still reference.
#[derive(Debug, Message)]
#[rtype(result = "Result<std::collections::HashSet<String>, BrokerError>")]
pub struct ReferencedSubjects;

/// The scopes one user granted one client, over the user's live grants of
/// it (the union; empty when none, or when the client has more grants than
/// [`GRANTED_SCOPES_SCAN`] and the answer would cost a long scan).
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<String>, BrokerError>")]
pub struct GrantedScopes {
    pub client_id: ClientId,
    /// The Vault's user id.
    pub user: String,
    pub now: i64,
}

/// The most grants of one client [`GrantedScopes`] looks through.
pub const GRANTED_SCOPES_SCAN: usize = 10_000;

/// Live grants and tokens of a client: `(grants, tokens)`.
#[derive(Debug, Message)]
#[rtype(result = "Result<(usize, usize), BrokerError>")]
pub struct ClientTokenCounts {
    pub client_id: ClientId,
}

/// How many grants each upstream subject has.
#[derive(Debug, Message)]
#[rtype(result = "Result<std::collections::HashMap<String, usize>, BrokerError>")]
pub struct GrantsPerSubject;

/// Revokes every grant (and token) of one user, across clients.
#[derive(Debug, Message)]
#[rtype(result = "Result<usize, BrokerError>")]
pub struct RevokeSubjectGrants {
    /// The Vault's user id.
    pub user: String,
}

/// The upstream subjects signed in through a client.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<String>, BrokerError>")]
pub struct ClientSubjects {
    pub client_id: ClientId,
}
