//! The TokenBroker's rules, driven through `TokenBrokerCore` (the actor's
//! writes) and `BrokerReader` (the HTTP side's reads) over a memory store,
//! with explicit times.

use std::sync::Arc;

use super::*;
use crate::actors::handle::Reads;
use crate::domain::pkce::{challenge_of, new_verifier};
use crate::domain::SecretToken;
use crate::storage::{MemoryStore, SharedStore, Tree};

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
    let store: SharedStore = Arc::new(MemoryStore::new());
    Broker {
        core: TokenBrokerCore::new(store.clone(), POLICY),
        reader: BrokerReader::new(store.clone()),
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
                    client_id: CLIENT.into(),
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
            client_id: client.into(),
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
            client_id: client.into(),
            now,
        })?;
        self.core.refresh(RefreshTokens {
            refresh_token: refresh.clone(),
            client_id: client.into(),
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

// --- Codes ---

#[test]
fn a_code_redeems_once_for_tokens_that_introspect_as_active() {
    let mut b = broker();
    let pair = b.signed_in(T0);
    assert!(b.active(&pair.access_token, T0));
    assert!(b.active(refresh_token(&pair), T0));
    assert_eq!(pair.scope, "openid email");
    assert_eq!(pair.expires_in, POLICY.access_ttl);
    let record = b
        .reader
        .read(IntrospectToken {
            token: pair.access_token.clone(),
            now: T0,
        })
        .unwrap()
        .unwrap();
    assert_eq!(record.kind, TokenKind::Access);
    assert_eq!(record.client_id, CLIENT);
    assert_eq!(record.user, "u_alice");
}

#[test]
fn a_code_redeemed_twice_is_refused_and_the_tokens_of_its_first_redemption_are_revoked() {
    let mut b = broker();
    let (code, verifier) = b.code(T0);
    let pair = b.redeem(&code, &verifier, T0).unwrap();
    let again = b.redeem(&code, &verifier, T0 + 1);
    assert!(matches!(again, Err(BrokerError::Reuse(_))));
    assert!(!b.active(&pair.access_token, T0 + 1));
    assert!(!b.active(refresh_token(&pair), T0 + 1));
    assert!(is_invalid_grant(&b.refresh(&pair, T0 + 2)));
}

#[test]
fn a_code_is_refused_with_a_wrong_or_missing_pkce_verifier_and_still_redeems_with_the_right_one() {
    let mut b = broker();
    let (code, verifier) = b.code(T0);
    let wrong = new_verifier();
    assert!(is_invalid_grant(&b.redeem(&code, &wrong, T0)));
    assert!(is_invalid_grant(
        &b.redeem_as(&code, CLIENT, REDIRECT, None, T0)
    ));
    // The S256 challenge itself is not a verifier.
    let challenge = challenge_of(&verifier);
    assert!(is_invalid_grant(&b.redeem(&code, &challenge, T0)));
    assert!(b.redeem(&code, &verifier, T0).is_ok());
}

#[test]
fn a_code_is_refused_unless_the_redirect_uri_is_exactly_the_authorized_one() {
    let mut b = broker();
    let (code, verifier) = b.code(T0);
    for near in [
        "https://app.example/cb/",
        "https://APP.example/cb",
        "https://app.example/cb?x=1",
        "http://app.example/cb",
    ] {
        let r = b.redeem_as(&code, CLIENT, near, Some(&verifier), T0);
        assert!(is_invalid_grant(&r), "{near} was accepted");
    }
    assert!(b.redeem(&code, &verifier, T0).is_ok());
}

#[test]
fn a_code_is_refused_to_another_client_and_stays_usable_by_its_own() {
    let mut b = broker();
    let (code, verifier) = b.code(T0);
    let r = b.redeem_as(&code, OTHER, REDIRECT, Some(&verifier), T0);
    assert!(is_invalid_grant(&r));
    assert!(b.redeem(&code, &verifier, T0).is_ok());
}

#[test]
fn a_code_is_refused_once_its_lifetime_has_passed() {
    let mut b = broker();
    let (code, verifier) = b.code(T0);
    assert!(is_invalid_grant(&b.redeem(
        &code,
        &verifier,
        T0 + POLICY.code_ttl
    )));
    assert_eq!(b.count(Tree::Grants), 0);
}

#[test]
fn an_unknown_code_is_refused() {
    let mut b = broker();
    let made_up = SecretToken::generate("mcp_code_");
    assert!(is_invalid_grant(&b.redeem(&made_up, &new_verifier(), T0)));
}

// --- Refresh ---

#[test]
fn a_refresh_hands_out_a_new_pair_and_the_old_tokens_stop_being_active() {
    let mut b = broker();
    let first = b.signed_in(T0);
    let second = b.refresh(&first, T0 + 100).unwrap();
    assert_ne!(second.access_token, first.access_token);
    assert_ne!(refresh_token(&second), refresh_token(&first));
    assert_eq!(second.grant_id, first.grant_id);
    assert!(!b.active(refresh_token(&first), T0 + 100));
    assert!(b.active(refresh_token(&second), T0 + 100));
    assert!(b.active(&second.access_token, T0 + 100));
    // The new refresh token is good for another full idle period.
    assert!(b
        .refresh(&second, T0 + 100 + POLICY.refresh_idle - 1)
        .is_ok());
}

#[test]
fn a_duplicate_refresh_inside_the_grace_window_gets_the_same_pair() {
    let mut b = broker();
    let first = b.signed_in(T0);
    let second = b.refresh(&first, T0 + 100).unwrap();
    let again = b.refresh(&first, T0 + 100 + POLICY.refresh_grace).unwrap();
    assert_eq!(again.access_token, second.access_token);
    assert_eq!(refresh_token(&again), refresh_token(&second));
    assert!(b.active(refresh_token(&second), T0 + 100 + POLICY.refresh_grace));
}

#[test]
fn a_refresh_token_reused_after_the_grace_window_revokes_every_token_of_the_sign_in() {
    let mut b = broker();
    let first = b.signed_in(T0);
    let second = b.refresh(&first, T0 + 100).unwrap();
    let reuse = b.refresh(&first, T0 + 100 + POLICY.refresh_grace + 1);
    assert!(matches!(reuse, Err(BrokerError::Reuse(_))));
    let later = T0 + 100 + POLICY.refresh_grace + 2;
    assert!(!b.active(&second.access_token, later));
    assert!(!b.active(refresh_token(&second), later));
    assert!(is_invalid_grant(&b.refresh(&second, later)));
    assert_eq!(b.count(Tree::Grants), 0);
    assert_eq!(b.count(Tree::Tokens), 0);
}

#[test]
fn a_refresh_token_left_unused_for_its_idle_lifetime_is_refused() {
    let mut b = broker();
    let pair = b.signed_in(T0);
    let r = b.refresh(&pair, T0 + POLICY.refresh_idle);
    assert!(is_invalid_grant(&r));
    assert!(!b.active(refresh_token(&pair), T0 + POLICY.refresh_idle));
}

#[test]
fn an_expired_refresh_token_is_refused_by_the_http_sides_check_as_by_the_rotation() {
    // The token endpoint peeks through the reader before it refreshes the
    // user's upstream token; both checks must refuse the same tokens.
    let mut b = broker();
    let pair = b.signed_in(T0);
    let late = T0 + POLICY.refresh_idle;
    let peek = b.reader.read(PeekRefresh {
        refresh_token: refresh_token(&pair).clone(),
        client_id: CLIENT.into(),
        now: late,
    });
    let rotate = b.core.refresh(RefreshTokens {
        refresh_token: refresh_token(&pair).clone(),
        client_id: CLIENT.into(),
        scopes: None,
        now: late,
    });
    assert!(
        is_invalid_grant(&peek),
        "the peek accepted an expired refresh token"
    );
    assert!(is_invalid_grant(&rotate));
}

#[test]
fn refreshing_never_extends_a_sign_in_past_its_maximum_lifetime() {
    let mut b = broker();
    let mut pair = b.signed_in(T0);
    let end = T0 + POLICY.grant_lifetime;
    let mut now = T0;
    // Refresh every six days: never idle for long, yet the sign-in ends.
    while now + 6 * 86400 < end {
        now += 6 * 86400;
        pair = b.refresh(&pair, now).unwrap();
    }
    let last = b.refresh(&pair, end - 10).unwrap();
    assert_eq!(last.expires_in, 10, "the access token outlives the sign-in");
    let after = b.refresh(&last, end);
    assert!(is_invalid_grant(&after));
    assert!(!b.active(&last.access_token, end));
}

#[test]
fn a_refresh_token_presented_by_another_client_is_refused_and_stays_usable() {
    let mut b = broker();
    let pair = b.signed_in(T0);
    let r = b.refresh_as(refresh_token(&pair), OTHER, None, T0 + 1);
    assert!(is_invalid_grant(&r));
    assert!(b.refresh(&pair, T0 + 2).is_ok());
}

#[test]
fn an_access_token_cannot_be_used_as_a_refresh_token() {
    let mut b = broker();
    let pair = b.signed_in(T0);
    let r = b.refresh_as(&pair.access_token, CLIENT, None, T0 + 1);
    assert!(is_invalid_grant(&r));
}

#[test]
fn a_refresh_may_narrow_the_scopes_but_never_widen_them() {
    let mut b = broker();
    let pair = b.signed_in(T0);
    let wider = vec!["openid".into(), "drive".into()];
    let r = b.refresh_as(refresh_token(&pair), CLIENT, Some(wider), T0 + 1);
    assert!(matches!(r, Err(BrokerError::InvalidScope)));
    let narrower = b
        .refresh_as(
            refresh_token(&pair),
            CLIENT,
            Some(vec!["openid".into()]),
            T0 + 2,
        )
        .unwrap();
    assert_eq!(narrower.scope, "openid");
}

// --- Revocation ---

#[test]
fn revoking_an_access_token_leaves_the_refresh_token_usable() {
    let mut b = broker();
    let pair = b.signed_in(T0);
    let revoked = b
        .core
        .revoke(RevokeToken {
            token: pair.access_token.clone(),
            client_id: Some(CLIENT.into()),
            now: T0 + 1,
        })
        .unwrap();
    assert!(revoked.is_some());
    assert!(!b.active(&pair.access_token, T0 + 1));
    assert!(b.refresh(&pair, T0 + 2).is_ok());
}

#[test]
fn revoking_a_refresh_token_revokes_every_token_of_the_sign_in() {
    let mut b = broker();
    let first = b.signed_in(T0);
    let second = b.refresh(&first, T0 + 1).unwrap();
    b.core
        .revoke(RevokeToken {
            token: refresh_token(&second).clone(),
            client_id: Some(CLIENT.into()),
            now: T0 + 2,
        })
        .unwrap();
    assert!(!b.active(&first.access_token, T0 + 2));
    assert!(!b.active(&second.access_token, T0 + 2));
    assert!(is_invalid_grant(&b.refresh(&second, T0 + 3)));
    assert_eq!(b.count(Tree::Grants), 0);
    assert_eq!(b.count(Tree::GrantTokens), 0);
}

#[test]
fn a_client_cannot_revoke_another_clients_token() {
    let mut b = broker();
    let pair = b.signed_in(T0);
    let r = b
        .core
        .revoke(RevokeToken {
            token: refresh_token(&pair).clone(),
            client_id: Some(OTHER.into()),
            now: T0 + 1,
        })
        .unwrap();
    assert!(r.is_none());
    assert!(b.active(&pair.access_token, T0 + 1));
    assert!(b.refresh(&pair, T0 + 2).is_ok());
}

#[test]
fn revoking_an_unknown_token_answers_nothing_and_changes_nothing() {
    let mut b = broker();
    let pair = b.signed_in(T0);
    let r = b
        .core
        .revoke(RevokeToken {
            token: SecretToken::generate(ACCESS_PREFIX),
            client_id: None,
            now: T0 + 1,
        })
        .unwrap();
    assert!(r.is_none());
    assert!(b.active(&pair.access_token, T0 + 1));
}

#[test]
fn revoking_a_grant_ends_its_sign_in_only() {
    let mut b = broker();
    let one = b.signed_in(T0);
    let two = b.signed_in(T0);
    let removed = b.core.revoke_grant_tokens(&one.grant_id).unwrap();
    assert_eq!(removed, 2);
    assert!(!b.active(&one.access_token, T0 + 1));
    assert!(b.active(&two.access_token, T0 + 1));
}

#[test]
fn revoking_a_client_ends_all_its_sign_ins_and_no_other_clients() {
    let mut b = broker();
    let one = b.signed_in(T0);
    let two = b.signed_in(T0);
    // A sign-in of another client, on the same store.
    let (code, verifier) = b.code(T0);
    let mut record: CodeRecord = crate::storage::codec::decode(
        Tree::Codes,
        &b.store
            .get(Tree::Codes, code.hash().as_bytes())
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    record.client_id = OTHER.into();
    let mut batch = crate::storage::Batch::new();
    batch.insert(
        Tree::Codes,
        code.hash().as_bytes().to_vec(),
        crate::storage::codec::encode(&record).unwrap(),
    );
    b.store.apply(batch).unwrap();
    let other = b
        .redeem_as(&code, OTHER, REDIRECT, Some(&verifier), T0)
        .unwrap()
        .pair
        .unwrap();
    assert_eq!(
        b.core
            .client_counts(ClientTokenCounts {
                client_id: CLIENT.into()
            })
            .unwrap(),
        (2, 4)
    );
    let revoked = b
        .core
        .revoke_client(RevokeClientGrants {
            client_ids: vec![CLIENT.into()],
        })
        .unwrap();
    assert_eq!(revoked, 2);
    assert!(!b.active(&one.access_token, T0 + 1));
    assert!(!b.active(refresh_token(&two), T0 + 1));
    assert!(b.active(&other.access_token, T0 + 1));
    assert_eq!(
        b.core
            .client_counts(ClientTokenCounts {
                client_id: CLIENT.into()
            })
            .unwrap(),
        (0, 0)
    );
}

// --- Introspection ---

#[test]
fn introspection_answers_inactive_for_expired_rotated_revoked_and_unknown_tokens() {
    let mut b = broker();
    let first = b.signed_in(T0);
    assert!(b.active(&first.access_token, T0 + POLICY.access_ttl - 1));
    assert!(!b.active(&first.access_token, T0 + POLICY.access_ttl));
    let second = b.refresh(&first, T0 + 10).unwrap();
    assert!(
        !b.active(refresh_token(&first), T0 + 10),
        "a rotated refresh token is active"
    );
    assert!(!b.active(&SecretToken::generate(ACCESS_PREFIX), T0 + 10));
    b.core.revoke_grant_tokens(&second.grant_id).unwrap();
    assert!(!b.active(&second.access_token, T0 + 11));
}

// --- Purge ---

fn purge(b: &mut Broker, now: i64, limit: usize, scan: usize) -> TokenPurge {
    let mut total = TokenPurge::default();
    let mut cursor = None;
    loop {
        let step = b
            .core
            .purge_expired(PurgeTokens {
                now,
                limit,
                scan,
                cursor,
            })
            .unwrap();
        assert!(step.total() <= limit, "one step removed {step:?}");
        total.transactions += step.transactions;
        total.codes += step.codes;
        total.tokens += step.tokens;
        total.grants += step.grants;
        match step.next {
            Some(next) => cursor = Some(next),
            None => return total,
        }
    }
}

#[test]
fn a_purge_removes_expired_sign_ins_codes_and_tokens_and_keeps_live_ones() {
    let mut b = broker();
    let pair = b.signed_in(T0);
    b.begin(T0); // never approved
    b.code(T0); // never redeemed
    let now = T0 + POLICY.access_ttl; // past the transaction, code and access lifetimes
    let report = purge(&mut b, now, 1000, 1000);
    assert_eq!(report.transactions, 1);
    assert_eq!(report.codes, 2, "the redeemed code and the unused one");
    assert_eq!(report.tokens, 1, "the access token");
    assert_eq!(report.grants, 0);
    assert_eq!(b.count(Tree::Transactions), 0);
    assert_eq!(b.count(Tree::Codes), 0);
    assert!(
        b.refresh(&pair, now).is_ok(),
        "the live refresh token was purged"
    );
}

#[test]
fn a_purge_removes_a_sign_in_past_its_maximum_lifetime_with_all_its_tokens() {
    let mut b = broker();
    let pair = b.signed_in(T0);
    let end = T0 + POLICY.grant_lifetime;
    let report = purge(&mut b, end, 1000, 1000);
    assert_eq!(report.grants, 1);
    assert_eq!(report.tokens, 2);
    assert_eq!(b.count(Tree::Grants), 0);
    assert_eq!(b.count(Tree::Tokens), 0);
    assert_eq!(b.count(Tree::GrantTokens), 0);
    assert_eq!(b.count(Tree::ClientGrants), 0);
    assert!(is_invalid_grant(&b.refresh(&pair, end)));
}

#[test]
fn a_purge_in_small_steps_removes_exactly_what_one_big_purge_removes() {
    let build = || {
        let mut b = broker();
        for i in 0..5 {
            b.signed_in(T0 + i);
            b.begin(T0 + i);
            b.code(T0 + i);
        }
        b
    };
    let now = T0 + POLICY.access_ttl + 10;
    let mut big = build();
    let mut small = build();
    let at_once = purge(&mut big, now, 1000, 1000);
    let stepped = purge(&mut small, now, 1, 2);
    assert_eq!(stepped, at_once);
    assert_eq!(at_once.total(), 5 + 10 + 5);
    for tree in [
        Tree::Transactions,
        Tree::Codes,
        Tree::Tokens,
        Tree::GrantTokens,
    ] {
        assert_eq!(small.count(tree), big.count(tree));
    }
}

#[test]
fn sign_ins_past_their_maximum_lifetime_are_purged_one_per_step_when_the_limit_is_one() {
    let mut b = broker();
    let mut grants = Vec::new();
    for i in 0..3 {
        let pair = b.signed_in(T0 + i);
        // Keep the refresh token alive to the end of the sign-in.
        let mut p = pair;
        let mut now = T0 + i;
        while now + 6 * 86400 < T0 + POLICY.grant_lifetime {
            now += 6 * 86400;
            p = b.refresh(&p, now).unwrap();
        }
        grants.push(p);
    }
    let end = T0 + 2 + POLICY.grant_lifetime;
    let report = purge(&mut b, end, 1, 1000);
    assert_eq!(report.grants, 3);
    assert_eq!(b.count(Tree::Grants), 0);
    assert_eq!(b.count(Tree::Tokens), 0);
    for p in &grants {
        assert!(!b.active(&p.access_token, end));
    }
}

#[test]
fn one_purge_step_does_no_more_than_its_limit() {
    let mut b = broker();
    for i in 0..4 {
        b.begin(T0 + i);
    }
    let step = b
        .core
        .purge_expired(PurgeTokens {
            now: T0 + POLICY.transaction_ttl + 10,
            limit: 3,
            scan: 100,
            cursor: None,
        })
        .unwrap();
    assert_eq!(step.total(), 3);
    assert!(step.next.is_some());
    assert_eq!(b.count(Tree::Transactions), 1);
}

// --- The sign-in transaction ---

#[test]
fn a_consent_with_a_wrong_csrf_token_is_refused_and_the_sign_in_stays_pending() {
    let mut b = broker();
    let p = b.begin(T0);
    let forged = b.core.decide(DecideConsent {
        state: p.begun.state.clone(),
        csrf: SecretToken::generate(""),
        approve: true,
        browser: p.cookie.hash(),
        now: T0,
    });
    assert!(matches!(forged, Err(BrokerError::Csrf)));
    assert!(b.decide(&p, true, T0).is_ok());
}

#[test]
fn a_consent_can_be_submitted_only_once() {
    let mut b = broker();
    let p = b.begin(T0);
    b.decide(&p, true, T0).unwrap();
    assert!(matches!(b.decide(&p, true, T0), Err(BrokerError::Csrf)));
    assert!(matches!(b.decide(&p, false, T0), Err(BrokerError::Csrf)));
}

#[test]
fn a_denied_consent_ends_the_sign_in() {
    let mut b = broker();
    let p = b.begin(T0);
    b.decide(&p, false, T0).unwrap();
    assert_eq!(b.count(Tree::Transactions), 0);
    assert!(matches!(
        b.complete(&p, Some(&p.cookie), T0),
        Err(BrokerError::UnknownTransaction)
    ));
}

#[test]
fn an_approved_sign_in_completes_once_from_the_approving_browser() {
    let mut b = broker();
    let p = b.begin(T0);
    b.decide(&p, true, T0).unwrap();
    let txn = b.complete(&p, Some(&p.cookie), T0 + 1).unwrap();
    assert_eq!(txn.client_id, CLIENT);
    assert_eq!(txn.redirect_uri, REDIRECT);
    assert_eq!(txn.client_state, "xyz");
    assert!(matches!(
        b.complete(&p, Some(&p.cookie), T0 + 2),
        Err(BrokerError::UnknownTransaction)
    ));
}

#[test]
fn a_callback_from_another_browser_is_refused_and_ends_the_sign_in() {
    let mut b = broker();
    let p = b.begin(T0);
    b.decide(&p, true, T0).unwrap();
    let stranger = SecretToken::generate("");
    assert!(matches!(
        b.complete(&p, Some(&stranger), T0),
        Err(BrokerError::WrongBrowser(_))
    ));
    // The approving browser is too late now: the link is dead.
    assert!(matches!(
        b.complete(&p, Some(&p.cookie), T0),
        Err(BrokerError::UnknownTransaction)
    ));
}

#[test]
fn a_callback_without_the_browser_cookie_is_refused() {
    let mut b = broker();
    let p = b.begin(T0);
    b.decide(&p, true, T0).unwrap();
    assert!(matches!(
        b.complete(&p, None, T0),
        Err(BrokerError::WrongBrowser(_))
    ));
}

#[test]
fn a_sign_in_that_was_not_approved_cannot_be_completed() {
    let mut b = broker();
    let p = b.begin(T0);
    assert!(matches!(
        b.complete(&p, Some(&p.cookie), T0),
        Err(BrokerError::UnknownTransaction)
    ));
    // Still pending: consent can follow.
    assert!(b.decide(&p, true, T0).is_ok());
}

#[test]
fn a_sign_in_expires_after_the_transaction_lifetime() {
    let mut b = broker();
    let p = b.begin(T0);
    let late = T0 + POLICY.transaction_ttl;
    assert!(matches!(
        b.decide(&p, true, late),
        Err(BrokerError::UnknownTransaction)
    ));
    let q = b.begin(T0);
    b.decide(&q, true, T0).unwrap();
    assert!(matches!(
        b.complete(&q, Some(&q.cookie), late),
        Err(BrokerError::UnknownTransaction)
    ));
}

#[test]
fn an_unknown_state_is_refused_at_consent() {
    let mut b = broker();
    let p = b.begin(T0);
    let r = b.core.decide(DecideConsent {
        state: SecretToken::generate(""),
        csrf: p.begun.csrf.clone(),
        approve: true,
        browser: p.cookie.hash(),
        now: T0,
    });
    assert!(matches!(r, Err(BrokerError::UnknownTransaction)));
}
