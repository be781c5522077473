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
use crate::storage::{codec, keys, BrokerTree, OwnedBatch};

pub const ACCESS_PREFIX: &str = "mcp_at_";
pub const REFRESH_PREFIX: &str = "mcp_rt_";

impl TokenBrokerCore {
    /// Exchanges a code for tokens (RFC 6749 §4.1.3, RFC 7636 §4.6).
    pub fn redeem(&mut self, msg: RedeemCode) -> Result<Redeemed, BrokerError> {
        let key = hash_key(&msg.code);
        let Some(mut code) = self.get::<CodeRecord>(BrokerTree::Codes, &key)? else {
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
        // Last: the code is used only once everything it issues exists.
        batch.insert(BrokerTree::Codes, key, codec::encode(&code)?);
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
            codec::encode(&record(TokenKind::Access, access_expires))?,
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
                codec::encode(&record(TokenKind::Refresh, expires))?,
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
    /// refresh token retired; a duplicate inside the grace window gets the
    /// same pair; a reuse after it revokes the whole family.
    pub fn refresh(&mut self, msg: RefreshTokens) -> Result<TokenPair, BrokerError> {
        let key = hash_key(&msg.refresh_token);
        let old_hash = *msg.refresh_token.hash().as_bytes();
        let (mut old, grant) = match self.reader.refreshable(
            &msg.refresh_token,
            &msg.client_id,
            msg.now,
        )? {
            Refreshable::Live { record, grant } => (record, grant),
            Refreshable::Rotated { record, at } => {
                if msg.now - at <= self.policy.refresh_grace {
                    if let Some((pair, _)) = self.recent.get(&old_hash) {
                        return Ok(pair.clone());
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
        let scopes = match msg.scopes {
            Some(asked) if asked.iter().all(|s| old.scopes.contains(s)) => asked,
            Some(_) => return Err(BrokerError::InvalidScope),
            None => old.scopes.clone(),
        };
        let mut batch = OwnedBatch::new();
        let pair = self.mint(&mut batch, &grant, &scopes, true, msg.now)?;
        old.rotated_at = Some(msg.now);
        // Last: the old token is retired only once its successors exist.
        batch.insert(BrokerTree::Tokens, key, codec::encode(&old)?);
        self.commit_in_order(batch)?;
        let grace = self.policy.refresh_grace;
        while let Some(&(hash, at)) = self.recent_order.front() {
            if msg.now - at <= grace {
                break;
            }
            self.recent_order.pop_front();
            if self.recent.get(&hash).is_some_and(|(_, t)| *t == at) {
                self.recent.remove(&hash);
            }
        }
        self.recent.insert(old_hash, (pair.clone(), msg.now));
        self.recent_order.push_back((old_hash, msg.now));
        Ok(pair)
    }
}
