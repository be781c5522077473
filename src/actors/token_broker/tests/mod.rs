//! The TokenBroker's rules, driven through `TokenBrokerCore` (the actor's
//! writes) and `BrokerReader` (the HTTP side's reads) over a memory store,
//! with explicit times.

use crate::domain::ClientId;
use std::sync::Arc;

use super::*;
use crate::actors::handle::Reads;
use crate::domain::pkce::{challenge_of, new_verifier};
use crate::domain::SecretToken;
use crate::storage::{BrokerTree, MemoryStore, Owned, SharedStore, Tree};

const T0: i64 = 1_700_000_000;
const POLICY: TokenPolicy = TokenPolicy {
    transaction_ttl: 600,
    code_ttl: 60,
    access_ttl: 3600,
    refresh_idle: 7 * 86400,
    grant_lifetime: 30 * 86400,
    refresh_grace: 30,
    flush_every_write: false,
};
const CLIENT: &str = "mcp_client_a";
const OTHER: &str = "mcp_client_b";
const REDIRECT: &str = "https://app.example/cb";

struct Broker {
    core: TokenBrokerCore,
    reader: BrokerReader,
    store: SharedStore,
}

fn broker() -> Broker {
    broker_on(Arc::new(MemoryStore::new()), SuccessorKey::random())
}

/// A broker over `store`: several over one store are several instances
/// sharing one database (they share the key file, so `key`).
fn broker_on(store: SharedStore, key: SuccessorKey) -> Broker {
    Broker {
        core: TokenBrokerCore::new(Owned::new(store.clone()), POLICY).with_successor_key(key),
        reader: BrokerReader::new(Owned::<BrokerTree>::new(store.clone()).read_only()),
        store,
    }
}

/// A sign-in on its way: the state, the CSRF token, the browser cookie
/// and the client's PKCE verifier.
struct Pending {
    begun: Begun,
    cookie: SecretToken,
    verifier: String,
}

impl Broker {
    fn begin(&mut self, now: i64) -> Pending {
        let verifier = new_verifier();
        let begun = self
            .core
            .begin(BeginAuthorization {
                request: NewTransaction {
                    client_id: ClientId::stored(CLIENT),
                    redirect_uri: REDIRECT.into(),
                    client_state: "xyz".into(),
                    code_challenge: challenge_of(&verifier),
                    scopes: vec!["openid".into(), "email".into()],
                    resource: None,
                    upstream_client_id: None,
                },
                now,
            })
            .unwrap();
        Pending {
            begun,
            cookie: SecretToken::generate(""),
            verifier,
        }
    }

    fn decide(
        &mut self,
        p: &Pending,
        approve: bool,
        now: i64,
    ) -> Result<AuthTransaction, BrokerError> {
        self.core.decide(DecideConsent {
            state: p.begun.state.clone(),
            csrf: p.begun.csrf.clone(),
            approve,
            browser: p.cookie.hash(),
            now,
        })
    }

    fn complete(
        &mut self,
        p: &Pending,
        cookie: Option<&SecretToken>,
        now: i64,
    ) -> Result<AuthTransaction, BrokerError> {
        self.core.complete(CompleteTransaction {
            state: p.begun.state.clone(),
            browser: cookie.cloned(),
            now,
        })
    }

    /// A code for a completed sign-in, with the verifier that redeems it.
    fn code(&mut self, now: i64) -> (SecretToken, String) {
        let p = self.begin(now);
        self.decide(&p, true, now).unwrap();
        let txn = self.complete(&p, Some(&p.cookie), now).unwrap();
        let code = self
            .core
            .issue_code(IssueCode {
                transaction: txn,
                user: "u_alice".into(),
                now,
            })
            .unwrap();
        (code, p.verifier)
    }

    fn redeem_as(
        &mut self,
        code: &SecretToken,
        client: &str,
        redirect: &str,
        verifier: Option<&str>,
        now: i64,
    ) -> Result<Redeemed, BrokerError> {
        self.core.redeem(RedeemCode {
            code: code.clone(),
            client_id: ClientId::stored(client),
            redirect_uri: Some(redirect.into()),
            code_verifier: verifier.map(str::to_owned),
            resource: None,
            mint: true,
            with_refresh: true,
            now,
        })
    }

    fn redeem(
        &mut self,
        code: &SecretToken,
        verifier: &str,
        now: i64,
    ) -> Result<TokenPair, BrokerError> {
        self.redeem_as(code, CLIENT, REDIRECT, Some(verifier), now)
            .map(|r| r.pair.unwrap())
    }

    fn signed_in(&mut self, now: i64) -> TokenPair {
        let (code, verifier) = self.code(now);
        self.redeem(&code, &verifier, now).unwrap()
    }

    /// A refresh as the token endpoint makes it: the HTTP side's peek
    /// through the reader, then the rotation on the core.
    fn refresh_as(
        &mut self,
        refresh: &SecretToken,
        client: &str,
        scopes: Option<Vec<String>>,
        now: i64,
    ) -> Result<TokenPair, BrokerError> {
        self.reader.read(PeekRefresh {
            refresh_token: refresh.clone(),
            client_id: ClientId::stored(client),
            now,
        })?;
        self.core.refresh(RefreshTokens {
            refresh_token: refresh.clone(),
            client_id: ClientId::stored(client),
            scopes,
            now,
        })
    }

    fn refresh(&mut self, pair: &TokenPair, now: i64) -> Result<TokenPair, BrokerError> {
        self.refresh_as(pair.refresh_token.as_ref().unwrap(), CLIENT, None, now)
    }

    fn active(&self, token: &SecretToken, now: i64) -> bool {
        self.reader
            .read(IntrospectToken {
                token: token.clone(),
                now,
            })
            .unwrap()
            .is_some()
    }

    fn count(&self, tree: Tree) -> usize {
        self.store.len(tree).unwrap()
    }
}

fn refresh_token(pair: &TokenPair) -> &SecretToken {
    pair.refresh_token.as_ref().unwrap()
}

fn is_invalid_grant<T: std::fmt::Debug>(r: &Result<T, BrokerError>) -> bool {
    matches!(r, Err(BrokerError::InvalidGrant(_)))
}

mod codes;
mod instances;
mod introspection;
mod purge;
mod refresh;
mod revocation;
mod sign_in;
