//! Revocation: one token (RFC 7009), a grant with its tokens, and every
//! grant of a client or of a user.

use super::{hash_key, TokenBrokerCore};
use crate::actors::token_broker::messages::{RevokeClientGrants, RevokeSubjectGrants, RevokeToken};
use crate::actors::token_broker::records::*;
use crate::actors::token_broker::BrokerError;
use crate::storage::{codec, keys, BrokerTree, OwnedBatch};

impl TokenBrokerCore {
    /// RFC 7009. A refresh token takes its whole family with it. Tokens of
    /// another client are left alone (and the answer is the same).
    pub fn revoke(&mut self, msg: RevokeToken) -> Result<Option<TokenRecord>, BrokerError> {
        let key = hash_key(&msg.token);
        let Some(record) = self.get::<TokenRecord>(BrokerTree::Tokens, &key)? else {
            return Ok(None);
        };
        if msg
            .client_id
            .as_ref()
            .is_some_and(|c| *c != record.client_id)
        {
            return Ok(None);
        }
        match record.kind {
            TokenKind::Refresh => {
                self.revoke_grant_tokens(&record.grant_id)?;
            }
            TokenKind::Access => {
                let mut batch = OwnedBatch::new();
                batch.remove(BrokerTree::Tokens, key);
                batch.remove(
                    BrokerTree::GrantTokens,
                    keys::pair(&record.grant_id, msg.token.hash().as_bytes()),
                );
                self.commit(batch)?;
            }
        }
        Ok(Some(record))
    }

    /// Deletes a grant and every token it issued, in one batch.
    pub fn revoke_grant_tokens(&mut self, grant_id: &str) -> Result<usize, BrokerError> {
        let prefix = keys::pair(grant_id, b"");
        let mut batch = OwnedBatch::new();
        let mut count = 0;
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page =
                self.trees
                    .scan_prefix(BrokerTree::GrantTokens, &prefix, after.as_deref(), 512)?;
            let full = page.len() == 512;
            after = page.last().map(|(k, _)| k.clone());
            for (k, _) in page {
                batch.remove(BrokerTree::Tokens, k[prefix.len()..].to_vec());
                batch.remove(BrokerTree::GrantTokens, k);
                count += 1;
            }
            if !full {
                break;
            }
        }
        if let Some(grant) = self.get::<GrantRecord>(BrokerTree::Grants, grant_id.as_bytes())? {
            batch.remove(
                BrokerTree::ClientGrants,
                keys::pair(&grant.client_id, grant_id.as_bytes()),
            );
        }
        batch.remove(BrokerTree::Grants, grant_id.as_bytes().to_vec());
        self.commit(batch)?;
        Ok(count)
    }

    /// Revokes every grant (and token) of the clients; answers how many grants.
    pub fn revoke_client(&mut self, msg: RevokeClientGrants) -> Result<usize, BrokerError> {
        let mut revoked = 0;
        for client_id in &msg.client_ids {
            let prefix = keys::pair(client_id, b"");
            let grants: Vec<String> = self
                .trees
                .scan_prefix(BrokerTree::ClientGrants, &prefix, None, usize::MAX)?
                .into_iter()
                .map(|(k, _)| String::from_utf8_lossy(&k[prefix.len()..]).into_owned())
                .collect();
            for grant_id in &grants {
                self.revoke_grant_tokens(grant_id)?;
            }
            revoked += grants.len();
        }
        Ok(revoked)
    }

    /// Revokes every grant of a user, across clients.
    pub fn revoke_subject(&mut self, msg: RevokeSubjectGrants) -> Result<usize, BrokerError> {
        let mut doomed = Vec::new();
        for (k, v) in self
            .trees
            .scan_prefix(BrokerTree::Grants, b"", None, usize::MAX)?
        {
            if codec::decode::<GrantRecord>(BrokerTree::Grants.into(), &v)
                .is_ok_and(|g| g.user == msg.user)
            {
                doomed.push(String::from_utf8_lossy(&k).into_owned());
            }
        }
        for grant_id in &doomed {
            self.revoke_grant_tokens(grant_id)?;
        }
        Ok(doomed.len())
    }
}
