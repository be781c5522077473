//! The purge of expired records, in bounded steps.

use super::*;

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
