use std::collections::{HashMap, HashSet, VecDeque};

use crate::clock::UnixTime;
use crate::domain::secret::random_b64;
use crate::domain::{CodeChallenge, SecretToken};
use crate::storage::{codec, keys, Batch, SharedStore, StoreError, Tree};

use super::messages::*;
use super::reader::{BrokerReader, Refreshable};
use super::records::*;
use super::BrokerError;
use crate::actors::handle::Reads;

pub const ACCESS_PREFIX: &str = "mcp_at_";
pub const REFRESH_PREFIX: &str = "mcp_rt_";
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

/// The TokenBroker's state machine over its trees. Runs on one thread, so
/// every read-check-write below is atomic with respect to other requests:
/// two redemptions of one code, or two uses of one refresh token, are
/// serialised and only one wins (outside the grace rule).
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

pub struct TokenBrokerCore {
    store: SharedStore,
    policy: TokenPolicy,
    /// Refresh tokens rotated within the grace window, with the pair they
    /// produced, so a duplicate post gets the same answer. In memory only:
    /// after a restart a duplicate post inside the window is refused.
    recent: HashMap<[u8; 32], (TokenPair, UnixTime)>,
    /// `recent`'s keys in rotation order, so expired entries are dropped
    /// from the front instead of scanning the whole map on every refresh.
    recent_order: VecDeque<([u8; 32], UnixTime)>,
    /// The lookups the HTTP side also makes, over the same store.
    reader: BrokerReader,
}

fn hash_key(token: &SecretToken) -> Vec<u8> {
    token.hash().as_bytes().to_vec()
}

impl TokenBrokerCore {
    pub fn new(store: SharedStore, policy: TokenPolicy) -> Self {
        Self {
            reader: BrokerReader::new(store.clone()),
            store,
            policy,
            recent: HashMap::new(),
            recent_order: VecDeque::new(),
        }
    }

    fn get<T: serde::de::DeserializeOwned>(
        &self,
        tree: Tree,
        key: &[u8],
    ) -> Result<Option<T>, BrokerError> {
        match self.store.get(tree, key)? {
            Some(bytes) => Ok(Some(codec::decode(tree, &bytes)?)),
            None => Ok(None),
        }
    }

    /// Writes `batch` in order, each write atomic: used where the batch is
    /// ordered so that a crash part-way leaves only unreachable records
    /// (new tokens nobody was given) and the write that takes effect —
    /// a code marked used, a refresh token marked rotated — comes last.
    fn commit_in_order(&self, batch: Batch) -> Result<(), BrokerError> {
        self.store.apply_in_order(batch)?;
        if self.policy.flush_every_write {
            self.store.flush()?;
        }
        Ok(())
    }

    fn commit(&self, batch: Batch) -> Result<(), BrokerError> {
        self.store.apply(batch)?;
        if self.policy.flush_every_write {
            self.store.flush()?;
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
        let mut batch = Batch::new();
        batch.insert(Tree::Transactions, hash_key(&state), txn.encode()?);
        self.commit(batch)?;
        Ok(Begun { state, csrf })
    }

    fn live_transaction(
        &self,
        state: &SecretToken,
        now: UnixTime,
    ) -> Result<AuthTransaction, BrokerError> {
        let stored = self.store.get(Tree::Transactions, &hash_key(state))?;
        match stored.map(|b| AuthTransaction::decode(&b)).transpose()? {
            Some(t) if t.expires_at > now => Ok(t),
            _ => Err(BrokerError::UnknownTransaction),
        }
    }

    /// The person's answer on the consent page.
    pub fn decide(&mut self, msg: DecideConsent) -> Result<AuthTransaction, BrokerError> {
        let mut txn = self.live_transaction(&msg.state, msg.now)?;
        if !txn.csrf_hash.verify(&msg.csrf) || txn.approved {
            return Err(BrokerError::Csrf);
        }
        let mut batch = Batch::new();
        if msg.approve {
            txn.approved = true;
            txn.browser_hash = Some(msg.browser);
            batch.insert(Tree::Transactions, hash_key(&msg.state), txn.encode()?);
        } else {
            batch.remove(Tree::Transactions, hash_key(&msg.state));
        }
        self.commit(batch)?;
        Ok(txn)
    }

    /// Takes an approved transaction at the upstream callback (single use),
    /// from the browser that approved it only. A callback from any other
    /// browser consumes the transaction too: a sign-in link sent to someone
    /// else is dead once refused.
    pub fn complete(&mut self, msg: CompleteTransaction) -> Result<AuthTransaction, BrokerError> {
        let txn = self.live_transaction(&msg.state, msg.now)?;
        if !txn.approved {
            return Err(BrokerError::UnknownTransaction);
        }
        let mut batch = Batch::new();
        batch.remove(Tree::Transactions, hash_key(&msg.state));
        self.commit(batch)?;
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
        let mut batch = Batch::new();
        batch.insert(Tree::Codes, hash_key(&code), codec::encode(&record)?);
        self.commit(batch)?;
        Ok(code)
    }

    /// Exchanges a code for tokens (RFC 6749 §4.1.3, RFC 7636 §4.6).
    pub fn redeem(&mut self, msg: RedeemCode) -> Result<Redeemed, BrokerError> {
        let key = hash_key(&msg.code);
        let Some(mut code) = self.get::<CodeRecord>(Tree::Codes, &key)? else {
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
        let mut batch = Batch::new();
        batch.insert(
            Tree::Grants,
            grant.grant_id.as_bytes().to_vec(),
            codec::encode(&grant)?,
        );
        batch.insert(
            Tree::ClientGrants,
            keys::pair(&grant.client_id, grant.grant_id.as_bytes()),
            vec![],
        );
        let pair = if msg.mint {
            Some(self.mint(&mut batch, &grant, &grant.scopes, msg.with_refresh, msg.now)?)
        } else {
            None
        };
        // Last: the code is used only once everything it issues exists.
        batch.insert(Tree::Codes, key, codec::encode(&code)?);
        self.commit_in_order(batch)?;
        Ok(Redeemed { pair, grant })
    }

    /// Adds a new access token (and refresh token) of `grant` to `batch`.
    fn mint(
        &self,
        batch: &mut Batch,
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
            Tree::GrantTokens,
            keys::pair(&grant.grant_id, access.hash().as_bytes()),
            vec![],
        );
        batch.insert(
            Tree::Tokens,
            hash_key(&access),
            codec::encode(&record(TokenKind::Access, access_expires))?,
        );
        let refresh = if with_refresh {
            let refresh = SecretToken::generate(REFRESH_PREFIX);
            let expires = (now + self.policy.refresh_idle).min(grant.expires_at);
            batch.insert(
                Tree::GrantTokens,
                keys::pair(&grant.grant_id, refresh.hash().as_bytes()),
                vec![],
            );
            batch.insert(
                Tree::Tokens,
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

    /// A live refresh token of `client_id`, without using it.
    pub fn peek_refresh(&mut self, msg: PeekRefresh) -> Result<TokenRecord, BrokerError> {
        self.reader.read(msg)
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
        let mut batch = Batch::new();
        let pair = self.mint(&mut batch, &grant, &scopes, true, msg.now)?;
        old.rotated_at = Some(msg.now);
        // Last: the old token is retired only once its successors exist.
        batch.insert(Tree::Tokens, key, codec::encode(&old)?);
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

    /// A live token's record (RFC 7662 `active`), or `None`.
    pub fn introspect(&mut self, msg: IntrospectToken) -> Result<Option<TokenRecord>, BrokerError> {
        self.reader.read(msg)
    }

    /// RFC 7009. A refresh token takes its whole family with it. Tokens of
    /// another client are left alone (and the answer is the same).
    pub fn revoke(&mut self, msg: RevokeToken) -> Result<Option<TokenRecord>, BrokerError> {
        let key = hash_key(&msg.token);
        let Some(record) = self.get::<TokenRecord>(Tree::Tokens, &key)? else {
            return Ok(None);
        };
        if msg
            .client_id
            .as_deref()
            .is_some_and(|c| c != record.client_id)
        {
            return Ok(None);
        }
        match record.kind {
            TokenKind::Refresh => {
                self.revoke_grant_tokens(&record.grant_id)?;
            }
            TokenKind::Access => {
                let mut batch = Batch::new();
                batch.remove(Tree::Tokens, key);
                batch.remove(
                    Tree::GrantTokens,
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
        let mut batch = Batch::new();
        let mut count = 0;
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = self
                .store
                .scan_prefix(Tree::GrantTokens, &prefix, after.as_deref(), 512)?;
            let full = page.len() == 512;
            after = page.last().map(|(k, _)| k.clone());
            for (k, _) in page {
                batch.remove(Tree::Tokens, k[prefix.len()..].to_vec());
                batch.remove(Tree::GrantTokens, k);
                count += 1;
            }
            if !full {
                break;
            }
        }
        if let Some(grant) = self.get::<GrantRecord>(Tree::Grants, grant_id.as_bytes())? {
            batch.remove(
                Tree::ClientGrants,
                keys::pair(&grant.client_id, grant_id.as_bytes()),
            );
        }
        batch.remove(Tree::Grants, grant_id.as_bytes().to_vec());
        self.commit(batch)?;
        Ok(count)
    }

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
                        Tree::Transactions,
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
                        Tree::Codes,
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
                        Tree::Tokens,
                        after,
                        &mut budget,
                        |t| t.expires_at <= now,
                        |batch, (key, t)| {
                            batch.remove(Tree::GrantTokens, keys::pair(&t.grant_id, key));
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
            .store
            .scan_prefix(Tree::Grants, b"", after.as_deref(), want)?;
        let at_end = page.len() < want;
        let mut last = after;
        for (key, value) in page {
            if budget.removals == 0 {
                return Ok(last);
            }
            budget.scan -= 1;
            if let Ok(g) = codec::decode::<GrantRecord>(Tree::Grants, &value) {
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
        tree: Tree,
        after: Option<Vec<u8>>,
        budget: &mut Budget,
        expired: impl Fn(&T) -> bool,
        also: impl Fn(&mut Batch, (&[u8], &T)),
    ) -> Result<(usize, Option<Vec<u8>>), BrokerError> {
        let want = PURGE_PAGE.min(budget.scan);
        let page = self.store.scan_prefix(tree, b"", after.as_deref(), want)?;
        let at_end = page.len() < want;
        let mut batch = Batch::new();
        let mut removed = 0;
        let mut last = after;
        let mut stopped = false;
        for (key, value) in &page {
            if budget.removals == 0 {
                stopped = true;
                break;
            }
            budget.scan -= 1;
            match T::decode_stored(tree, value) {
                Ok(record) if expired(&record) => {
                    also(&mut batch, (key, &record));
                    batch.remove(tree, key.clone());
                    budget.removals -= 1;
                    removed += 1;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, tree = tree.name(), "unreadable record left in place")
                }
            }
            last = Some(key.clone());
        }
        if !batch.is_empty() {
            self.commit(batch)?;
        }
        Ok((removed, if at_end && !stopped { None } else { last }))
    }

    /// Revokes every grant (and token) of the clients; answers how many grants.
    pub fn revoke_client(&mut self, msg: RevokeClientGrants) -> Result<usize, BrokerError> {
        let mut revoked = 0;
        for client_id in &msg.client_ids {
            let prefix = keys::pair(client_id, b"");
            let grants: Vec<String> = self
                .store
                .scan_prefix(Tree::ClientGrants, &prefix, None, usize::MAX)?
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

    /// Upstream subjects some grant or pending code still needs.
    pub fn referenced_subjects(
        &mut self,
        msg: ReferencedSubjects,
    ) -> Result<HashSet<String>, BrokerError> {
        self.reader.read(msg)
    }

    /// Live grants and tokens of a client.
    pub fn client_counts(&mut self, msg: ClientTokenCounts) -> Result<(usize, usize), BrokerError> {
        let prefix = keys::pair(&msg.client_id, b"");
        let grants = self
            .store
            .scan_prefix(Tree::ClientGrants, &prefix, None, usize::MAX)?;
        let mut tokens = 0;
        for (k, _) in &grants {
            let grant_id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            tokens += self
                .store
                .scan_prefix(
                    Tree::GrantTokens,
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
            .store
            .scan_prefix(Tree::ClientGrants, &prefix, None, usize::MAX)?
        {
            if let Some(g) = self.get::<GrantRecord>(Tree::Grants, &k[prefix.len()..])? {
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
            .store
            .scan_prefix(Tree::Grants, b"", None, usize::MAX)?
        {
            if let Ok(g) = codec::decode::<GrantRecord>(Tree::Grants, &v) {
                *counts.entry(g.user).or_insert(0) += 1;
            }
        }
        Ok(counts)
    }

    /// Revokes every grant of a user, across clients.
    pub fn revoke_subject(&mut self, msg: RevokeSubjectGrants) -> Result<usize, BrokerError> {
        let mut doomed = Vec::new();
        for (k, v) in self
            .store
            .scan_prefix(Tree::Grants, b"", None, usize::MAX)?
        {
            if codec::decode::<GrantRecord>(Tree::Grants, &v).is_ok_and(|g| g.user == msg.user) {
                doomed.push(String::from_utf8_lossy(&k).into_owned());
            }
        }
        for grant_id in &doomed {
            self.revoke_grant_tokens(grant_id)?;
        }
        Ok(doomed.len())
    }

    pub fn ping(&self) -> Result<(), StoreError> {
        self.store.get(Tree::Meta, keys::SCHEMA_KEY).map(|_| ())
    }
}
