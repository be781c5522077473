//! Removal of expired sign-ins, codes, tokens and grants, in bounded steps.

use super::TokenBrokerCore;
use crate::actors::token_broker::messages::{PurgeTokens, TokenPurge};
use crate::actors::token_broker::records::*;
use crate::actors::token_broker::BrokerError;
use crate::clock::UnixTime;
use crate::storage::{codec, keys, BrokerTree, OwnedBatch, Tree};

/// Records looked at per page of a purge.
const PURGE_PAGE: usize = 512;

/// What one purge call may still do.
struct Budget {
    removals: usize,
    scan: usize,
}

impl Budget {
    fn spent(&self) -> bool {
        self.removals == 0 || self.scan == 0
    }
}

impl TokenBrokerCore {
    /// Removes expired transactions, codes, tokens and grants, walking the
    /// trees in key order from `msg.cursor`: at most `msg.limit` removals
    /// and `msg.scan` records looked at per call, so a large store is
    /// cleaned in bounded steps between token requests. `next` says where
    /// to go on; `None` once every tree was seen.
    pub fn purge_expired(&mut self, msg: PurgeTokens) -> Result<TokenPurge, BrokerError> {
        let now = msg.now;
        let mut report = TokenPurge::default();
        let mut budget = Budget {
            removals: msg.limit,
            scan: msg.scan,
        };
        let mut cursor = msg.cursor.unwrap_or_default();
        loop {
            if budget.spent() {
                report.next = Some(cursor);
                return Ok(report);
            }
            let after = cursor.after.take();
            let next = match cursor.phase {
                0 => {
                    let (n, next) = self.purge_tree::<AuthTransaction>(
                        BrokerTree::Transactions,
                        after,
                        &mut budget,
                        |t| t.expires_at <= now,
                        |_, _| {},
                    )?;
                    report.transactions += n;
                    next
                }
                1 => {
                    let (n, next) = self.purge_tree::<CodeRecord>(
                        BrokerTree::Codes,
                        after,
                        &mut budget,
                        |c| c.expires_at <= now,
                        |_, _| {},
                    )?;
                    report.codes += n;
                    next
                }
                2 => {
                    let (n, next) = self.purge_tree::<TokenRecord>(
                        BrokerTree::Tokens,
                        after,
                        &mut budget,
                        |t| t.expires_at <= now,
                        |batch, (key, t)| {
                            batch.remove(BrokerTree::GrantTokens, keys::pair(&t.grant_id, key));
                        },
                    )?;
                    report.tokens += n;
                    next
                }
                3 => self.purge_grants(after, &mut budget, now, &mut report)?,
                _ => {
                    report.next = None;
                    return Ok(report);
                }
            };
            match next {
                Some(after) => cursor.after = Some(after),
                None => {
                    cursor.phase += 1;
                    cursor.after = None;
                }
            }
        }
    }

    /// Expired grants (a sign-in past its maximum lifetime) with their tokens.
    fn purge_grants(
        &mut self,
        after: Option<Vec<u8>>,
        budget: &mut Budget,
        now: UnixTime,
        report: &mut TokenPurge,
    ) -> Result<Option<Vec<u8>>, BrokerError> {
        let want = PURGE_PAGE.min(budget.scan);
        let page = self
            .trees
            .scan_prefix(BrokerTree::Grants, b"", after.as_deref(), want)?;
        let at_end = page.len() < want;
        let mut last = after;
        for (key, value) in page {
            if budget.removals == 0 {
                return Ok(last);
            }
            budget.scan -= 1;
            if let Ok(g) = codec::decode::<GrantRecord>(BrokerTree::Grants.into(), &value) {
                if g.expires_at <= now {
                    report.tokens += self.revoke_grant_tokens(&g.grant_id)?;
                    report.grants += 1;
                    budget.removals -= 1;
                }
            }
            last = Some(key);
        }
        Ok(if at_end { None } else { last })
    }

    /// Removes the records of `tree` that `expired` says are done, one page
    /// (one batch) per call; `also` adds index removals. Answers how many
    /// went and where to go on (`None`: the end of the tree).
    fn purge_tree<T: Stored>(
        &mut self,
        tree: BrokerTree,
        after: Option<Vec<u8>>,
        budget: &mut Budget,
        expired: impl Fn(&T) -> bool,
        also: impl Fn(&mut OwnedBatch<BrokerTree>, (&[u8], &T)),
    ) -> Result<(usize, Option<Vec<u8>>), BrokerError> {
        let want = PURGE_PAGE.min(budget.scan);
        let page = self.trees.scan_prefix(tree, b"", after.as_deref(), want)?;
        let at_end = page.len() < want;
        let mut batch = OwnedBatch::new();
        let mut removed = 0;
        let mut last = after;
        let mut stopped = false;
        for (key, value) in &page {
            if budget.removals == 0 {
                stopped = true;
                break;
            }
            budget.scan -= 1;
            match T::decode_stored(tree.into(), value) {
                Ok(record) if expired(&record) => {
                    also(&mut batch, (key, &record));
                    batch.remove(tree, key.clone());
                    budget.removals -= 1;
                    removed += 1;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, tree = Tree::from(tree).name(), "unreadable record left in place")
                }
            }
            last = Some(key.clone());
        }
        if !batch.is_empty() {
            self.commit(batch)?;
        }
        Ok((removed, if at_end && !stopped { None } else { last }))
    }
}
