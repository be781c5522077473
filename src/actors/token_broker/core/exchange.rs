//! The token endpoint's writes: a code exchanged for a grant and tokens,
//! and refresh-token rotation with its grace window.

use super::{hash_key, TokenBrokerCore};
use crate::actors::token_broker::messages::{RedeemCode, Redeemed, RefreshTokens};
use crate::actors::token_broker::reader::Refreshable;
use crate::actors::token_broker::records::*;
use crate::actors::token_broker::BrokerError;
use crate::clock::UnixTime;
use crate::domain::secret::random_b64;
use crate::domain::{CodeChallenge, SecretToken};
use crate::storage::{codec, keys, BrokerTree, OwnedBatch, StoreError};

pub const ACCESS_PREFIX: &str = "mcp_at_";
pub const REFRESH_PREFIX: &str = "mcp_rt_";

impl TokenBrokerCore {
    /// Exchanges a code for tokens (RFC 6749 §4.1.3, RFC 7636 §4.6). When
    /// another instance redeemed the code between this one's read and its
    /// write, the second try sees it redeemed: a reuse.
    pub fn redeem(&mut self, msg: RedeemCode) -> Result<Redeemed, BrokerError> {
        match self.try_redeem(&msg) {
            Err(e) if is_conflict(&e) => self.try_redeem(&msg).map_err(|e| {
                if is_conflict(&e) {
                    BrokerError::InvalidGrant("the authorization code was used concurrently")
                } else {
                    e
                }
            }),
            other => other,
        }
    }

    fn try_redeem(&mut self, msg: &RedeemCode) -> Result<Redeemed, BrokerError> {
        let key = hash_key(&msg.code);
        let Some((mut code, stored)) = self.get_as_stored::<CodeRecord>(BrokerTree::Codes, &key)?
        else {
            return Err(BrokerError::InvalidGrant(
                "unknown or expired authorization code",
            ));
        };
        if code.client_id != msg.client_id {
            return Err(BrokerError::InvalidGrant(
                "the code was issued to another client",
            ));
        }
        if let Some(grant_id) = &code.redeemed_by {
            // RFC 6749 §4.1.2: a code used twice revokes what it issued.
            let grant_id = grant_id.clone();
            self.revoke_grant_tokens(&grant_id)?;
            tracing::warn!(client_id = %code.client_id, grant_id, "authorization code reused; its tokens were revoked");
            return Err(BrokerError::Reuse(
                "the authorization code was already used; its tokens are revoked",
            ));
        }
        if code.expires_at <= msg.now {
            return Err(BrokerError::InvalidGrant("the authorization code expired"));
        }
        if msg.redirect_uri.as_deref() != Some(code.redirect_uri.as_str()) {
            return Err(BrokerError::InvalidGrant(
                "redirect_uri does not match the authorization request",
            ));
        }
        if !CodeChallenge::stored(code.code_challenge.clone())
            .verify(msg.code_verifier.as_deref().unwrap_or(""))
        {
            return Err(BrokerError::InvalidGrant(
                "PKCE verification failed (code_verifier)",
            ));
        }
        if msg.resource.is_some() && msg.resource != code.resource && code.resource.is_some() {
            return Err(BrokerError::InvalidTarget);
        }
        let grant = GrantRecord {
            grant_id: format!("g_{}", random_b64(16)),
            client_id: code.client_id.clone(),
            user: code.user.clone(),
            scopes: code.scopes.clone(),
            resource: msg.resource.clone().or(code.resource.clone()),
            created_at: msg.now,
            expires_at: msg.now + self.policy.grant_lifetime,
        };
        code.redeemed_by = Some(grant.grant_id.clone());
        let mut batch = OwnedBatch::new();
        batch.insert(
            BrokerTree::Grants,
            grant.grant_id.as_bytes().to_vec(),
            codec::encode(&grant)?,
        );
        batch.insert(
            BrokerTree::ClientGrants,
            keys::pair(&grant.client_id, grant.grant_id.as_bytes()),
            vec![],
        );
        let pair = if msg.mint {
            Some(self.mint(&mut batch, &grant, &grant.scopes, msg.with_refresh, msg.now)?)
        } else {
            None
        };
        // Last: the code is used only once everything it issues exists, and
        // only if it is still as read (see `redeem`).
        batch.swap(
            BrokerTree::Codes,
            key,
            Some(stored),
            Some(codec::encode(&code)?),
        );
        self.commit_in_order(batch)?;
        Ok(Redeemed { pair, grant })
    }

    /// Adds a new access token (and refresh token) of `grant` to `batch`.
    fn mint(
        &self,
        batch: &mut OwnedBatch<BrokerTree>,
        grant: &GrantRecord,
        scopes: &[String],
        with_refresh: bool,
        now: UnixTime,
    ) -> Result<TokenPair, BrokerError> {
        let access = SecretToken::generate(ACCESS_PREFIX);
        let access_expires = (now + self.policy.access_ttl).min(grant.expires_at);
        let record = |kind, expires_at| TokenRecord {
            kind,
            grant_id: grant.grant_id.clone(),
            client_id: grant.client_id.clone(),
            user: grant.user.clone(),
            scopes: scopes.to_vec(),
            resource: grant.resource.clone(),
            issued_at: now,
            expires_at,
            rotated_at: None,
            successor: None,
        };
        // Each token's index entry first, so revoking the grant always
        // finds every token that exists.
        batch.insert(
            BrokerTree::GrantTokens,
            keys::pair(&grant.grant_id, access.hash().as_bytes()),
            vec![],
        );
        batch.insert(
            BrokerTree::Tokens,
            hash_key(&access),
            record(TokenKind::Access, access_expires).encode()?,
        );
        let refresh = if with_refresh {
            let refresh = SecretToken::generate(REFRESH_PREFIX);
            let expires = (now + self.policy.refresh_idle).min(grant.expires_at);
            batch.insert(
                BrokerTree::GrantTokens,
                keys::pair(&grant.grant_id, refresh.hash().as_bytes()),
                vec![],
            );
            batch.insert(
                BrokerTree::Tokens,
                hash_key(&refresh),
                record(TokenKind::Refresh, expires).encode()?,
            );
            Some(refresh)
        } else {
            None
        };
        Ok(TokenPair {
            access_token: access,
            refresh_token: refresh,
            expires_in: access_expires - now,
            scope: scopes.join(" "),
            grant_id: grant.grant_id.clone(),
        })
    }

    /// Rotates a refresh token (OAuth 2.1 §4.3.1): a new pair, the old
    /// refresh token retired with that pair sealed in its record; a
    /// duplicate inside the grace window (a retry, or the same request on
    /// another instance) gets the same pair; a reuse after it revokes the
    /// whole family.
    pub fn refresh(&mut self, msg: RefreshTokens) -> Result<TokenPair, BrokerError> {
        match self.try_refresh(&msg) {
            Err(e) if is_conflict(&e) => self.try_refresh(&msg).map_err(|e| {
                if is_conflict(&e) {
                    BrokerError::InvalidGrant("the refresh token was used concurrently")
                } else {
                    e
                }
            }),
            other => other,
        }
    }

    fn try_refresh(&mut self, msg: &RefreshTokens) -> Result<TokenPair, BrokerError> {
        let key = hash_key(&msg.refresh_token);
        let (mut old, grant, stored) = match self.reader.refreshable(
            &msg.refresh_token,
            &msg.client_id,
            msg.now,
        )? {
            Refreshable::Live {
                record,
                grant,
                stored,
            } => (record, grant, stored),
            Refreshable::Rotated { record, at } => {
                if msg.now - at <= self.policy.refresh_grace {
                    let pair = record
                        .successor
                        .as_deref()
                        .and_then(|sealed| self.successor.open(&key, sealed));
                    if let Some(pair) = pair {
                        return Ok(pair);
                    }
                }
                let grant_id = record.grant_id;
                self.revoke_grant_tokens(&grant_id)?;
                tracing::warn!(client_id = %record.client_id, grant_id, "refresh token reused after rotation; the token family is revoked");
                return Err(BrokerError::Reuse(
                    "refresh token already used; every token of this sign-in is revoked",
                ));
            }
        };
        let scopes = match &msg.scopes {
            Some(asked) if asked.iter().all(|s| old.scopes.contains(s)) => asked.clone(),
            Some(_) => return Err(BrokerError::InvalidScope),
            None => old.scopes.clone(),
        };
        let mut batch = OwnedBatch::new();
        let pair = self.mint(&mut batch, &grant, &scopes, true, msg.now)?;
        old.rotated_at = Some(msg.now);
        old.successor = Some(self.successor.seal(&key, &pair));
        // Last: the old token is retired only once its successors exist,
        // and only if it is still as read. When another instance rotated it
        // meanwhile, this is a duplicate: `refresh` answers it again from
        // the record (the same pair inside the grace window).
        batch.swap(BrokerTree::Tokens, key, Some(stored), Some(old.encode()?));
        self.commit_in_order(batch)?;
        Ok(pair)
    }
}

/// Another writer (instance) changed the record between read and write.
fn is_conflict(e: &BrokerError) -> bool {
    matches!(e, BrokerError::Store(StoreError::Conflict { .. }))
}
