//! Micro-benchmarks of the hot primitives, so a regression shows without
//! the load generator: minting and hashing tokens, constant-time checks,
//! AES-GCM seal/open of a Google token record, and the store's get/insert.
//!
//! Run: cargo bench --bench micro   (criterion; reports under target/criterion)

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use drawbridge::crypto::cipher::Keyring;
use drawbridge::domain::SecretToken;
use drawbridge::storage::{MemoryStore, SledStore, Store, Tree};

fn tokens(c: &mut Criterion) {
    c.bench_function("mint access token (256-bit random, base64url)", |b| {
        b.iter(|| SecretToken::generate(black_box("mcp_at_")))
    });
    let token = SecretToken::generate("mcp_at_");
    c.bench_function("hash token (SHA-256)", |b| {
        b.iter(|| black_box(&token).hash())
    });
    let hash = token.hash();
    let presented = SecretToken::presented(token.expose());
    c.bench_function("verify token against hash (constant time)", |b| {
        b.iter(|| hash.verify(black_box(&presented)))
    });
}

fn vault(c: &mut Criterion) {
    let ring = Keyring::generate(1_750_000_000);
    // About the size of a user's sealed Google credentials.
    let record = vec![0x5au8; 600];
    c.bench_function("seal 600 B (AES-256-GCM)", |b| {
        b.iter(|| ring.seal("user", b"u_123", black_box(&record)))
    });
    let sealed = ring.seal("user", b"u_123", &record);
    c.bench_function("open 600 B (AES-256-GCM)", |b| {
        b.iter(|| ring.open("user", b"u_123", black_box(&sealed)).unwrap())
    });
    c.bench_function("blind index (HMAC-SHA-256)", |b| {
        b.iter(|| ring.blind_index("sub", black_box("109876543210")))
    });
}

fn store(c: &mut Criterion) {
    let value = vec![7u8; 200];
    for (name, store) in [
        ("memory", Box::new(MemoryStore::new()) as Box<dyn Store>),
        ("sled", Box::new(SledStore::temporary().unwrap())),
    ] {
        for i in 0..100_000u32 {
            store
                .insert(Tree::Tokens, &i.to_be_bytes(), value.clone())
                .unwrap();
        }
        let mut n = 0u32;
        c.bench_function(&format!("{name}: get (100k keys)"), |b| {
            b.iter(|| {
                n = (n + 7919) % 100_000;
                store.get(Tree::Tokens, &n.to_be_bytes()).unwrap()
            })
        });
        let mut k = 100_000u32;
        c.bench_function(&format!("{name}: insert 200 B (no flush)"), |b| {
            b.iter_batched(
                || {
                    k += 1;
                    k
                },
                |k| store.insert(Tree::Tokens, &k.to_be_bytes(), value.clone()),
                BatchSize::SmallInput,
            )
        });
    }
}

criterion_group!(benches, tokens, vault, store);
criterion_main!(benches);
