//! What operators see of a client's or a user's sign-ins.

use std::collections::HashMap;

use super::TokenBrokerCore;
use crate::actors::token_broker::messages::{ClientSubjects, ClientTokenCounts, GrantsPerSubject};
use crate::actors::token_broker::records::*;
use crate::actors::token_broker::BrokerError;
use crate::storage::{codec, keys, BrokerTree};

impl TokenBrokerCore {
    /// Live grants and tokens of a client.
    pub fn client_counts(&mut self, msg: ClientTokenCounts) -> Result<(usize, usize), BrokerError> {
        let prefix = keys::pair(&msg.client_id, b"");
        let grants = self
            .trees
            .scan_prefix(BrokerTree::ClientGrants, &prefix, None, usize::MAX)?;
        let mut tokens = 0;
        for (k, _) in &grants {
            let grant_id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            tokens += self
                .trees
                .scan_prefix(
                    BrokerTree::GrantTokens,
                    &keys::pair(&grant_id, b""),
                    None,
                    usize::MAX,
                )?
                .len();
        }
        Ok((grants.len(), tokens))
    }

    pub fn client_subjects(&mut self, msg: ClientSubjects) -> Result<Vec<String>, BrokerError> {
        let prefix = keys::pair(&msg.client_id, b"");
        let mut subs = Vec::new();
        for (k, _) in self
            .trees
            .scan_prefix(BrokerTree::ClientGrants, &prefix, None, usize::MAX)?
        {
            if let Some(g) = self.get::<GrantRecord>(BrokerTree::Grants, &k[prefix.len()..])? {
                if !subs.contains(&g.user) {
                    subs.push(g.user);
                }
            }
        }
        Ok(subs)
    }

    /// Grants per upstream subject.
    pub fn grants_per_subject(
        &mut self,
        _: GrantsPerSubject,
    ) -> Result<HashMap<String, usize>, BrokerError> {
        let mut counts = HashMap::new();
        for (_, v) in self
            .trees
            .scan_prefix(BrokerTree::Grants, b"", None, usize::MAX)?
        {
            if let Ok(g) = codec::decode::<GrantRecord>(BrokerTree::Grants.into(), &v) {
                *counts.entry(g.user).or_insert(0) += 1;
            }
        }
        Ok(counts)
    }
}
