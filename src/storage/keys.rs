//! The key layout: every tree Drawbridge writes, who owns it, and how its
//! keys are built. This file is the one place to read to understand what
//! is on disk.
//!
//! | tree      | owner    | key                           | value                                   |
//! |-----------|----------|-------------------------------|-----------------------------------------|
//! | `meta`    | startup  | UTF-8 name, e.g. `schema`     | engine metadata (schema version)        |
//! | `clients` | Registry | client id (`mcp_…`), UTF-8    | `ClientRecord` (bincode, see `codec`)   |
//! | `timelines` | Registry | client id, UTF-8            | `Timeline` (a client's recent steps; removed with the client) |
//! | `counters` | Registry | `clients`; `origin/<address>` | number of stored clients (u64); an address's registrations that may still be never used, and when the newest was made (both only on a store shared by several instances, where the cap and the flood guard need one record) |
//! | `leases`  | Janitor  | lease name, e.g. `janitor`    | `LeaseRecord`: which instance holds it, until when (a store shared by several instances) |
//! | `users`   | Vault    | user key (below)              | sealed `UserCredentials`                |
//! | `user_emails` | Vault | email key (below)            | the user key it points to               |
//! | `user_ids` | Vault   | a user's random id (`u_…`)    | the user key it points to               |
//! | `secrets` | Vault    | `<kind>/<id>`, UTF-8          | sealed bytes (`SealSecret`)             |
//! | `transactions` | TokenBroker | SHA-256 of the state      | `AuthTransaction` (pending logins)      |
//! | `codes`   | TokenBroker | SHA-256 of the code        | `CodeRecord` (single use, ≤ 5 min)      |
//! | `tokens`  | TokenBroker | SHA-256 of the token       | `TokenRecord` (access and refresh)      |
//! | `grants`  | TokenBroker | grant id                   | `GrantRecord` (a user's consent to a client) |
//! | `grant_tokens` | TokenBroker | grant id `/` token hash | empty (index: a grant's tokens)       |
//! | `client_grants` | TokenBroker | client id `/` grant id | empty (index: a client's grants)      |
//! | `dev_provider` | dev identity provider | `<kind>/` SHA-256 of the code or token (kind `code`, `access`, `refresh`) | `DevRecord`: the code's request or the token's scope, and its expiry (removed when read expired, swept every 5 min) |
//!
//! The owners' sets of trees are types (`RegistryTree`, `VaultTree`,
//! `BrokerTree`, `LeaseTree`, `DevProviderTree` in `storage::trees`): each actor is handed an `Owned` over
//! its own set, so writing another owner's tree does not compile. Its reader
//! gets a `ReadOnly` view of the same set; the Vault's snapshot alone reads
//! every tree (read-only), and the metrics see sizes only (`Sizes`).
//!
//! The TokenBroker's records name users only by the Vault's random user id
//! (`u_…`), never by subject or email, so they reveal no identity and stay
//! valid when a migration re-keys the Vault's user records.
//!
//! Secrets never appear in keys: client secrets and registration access
//! tokens are stored as SHA-256 hashes inside the client record.
//!
//! User keys: with encryption (every mode but FILE_PLAINTEXT) the user key is
//! `HMAC-SHA256(index_key, "subject" 0x00 "<len(issuer)>:<issuer>\n<sub>")`
//! and the email key `HMAC-SHA256(index_key, "email" 0x00 lower-cased
//! email)`, hex-encoded, so the keys reveal no identity; in FILE_PLAINTEXT
//! they are the values themselves. An email index entry is
//! `<email key>/<user key>` (one per user with that email verified; only
//! verified emails are indexed). Records of the previous release (user
//! record format 1) are keyed `HMAC(index_key, "sub" 0x00 sub)` and indexed
//! under the bare email key; they are read as they are and moved to the
//! new keys at the user's next store. Sealed values bind their kind and key as
//! AES-GCM associated data (see `actors::vault::cipher`).

/// A named tree (a keyspace). Each actor alone writes its own trees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tree {
    Meta,
    Clients,
    Timelines,
    Counters,
    Leases,
    Users,
    UserEmails,
    UserIds,
    Secrets,
    Transactions,
    Codes,
    Tokens,
    Grants,
    GrantTokens,
    ClientGrants,
    DevProvider,
}

impl Tree {
    pub const ALL: [Tree; 16] = [
        Tree::Meta,
        Tree::Clients,
        Tree::Timelines,
        Tree::Counters,
        Tree::Leases,
        Tree::Users,
        Tree::UserEmails,
        Tree::UserIds,
        Tree::Secrets,
        Tree::Transactions,
        Tree::Codes,
        Tree::Tokens,
        Tree::Grants,
        Tree::GrantTokens,
        Tree::ClientGrants,
        Tree::DevProvider,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Tree::Meta => "meta",
            Tree::Clients => "clients",
            Tree::Timelines => "timelines",
            Tree::Counters => "counters",
            Tree::Leases => "leases",
            Tree::Users => "users",
            Tree::UserEmails => "user_emails",
            Tree::UserIds => "user_ids",
            Tree::Secrets => "secrets",
            Tree::Transactions => "transactions",
            Tree::Codes => "codes",
            Tree::Tokens => "tokens",
            Tree::Grants => "grants",
            Tree::GrantTokens => "grant_tokens",
            Tree::ClientGrants => "client_grants",
            Tree::DevProvider => "dev_provider",
        }
    }

    pub fn from_name(name: &str) -> Option<Tree> {
        Tree::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// Key of the schema version record in [`Tree::Meta`].
pub const SCHEMA_KEY: &[u8] = b"schema";
/// The on-disk schema this build writes.
pub const SCHEMA_VERSION: u32 = 1;

/// Key of a client record in [`Tree::Clients`].
pub fn client(client_id: &str) -> Vec<u8> {
    client_id.as_bytes().to_vec()
}

/// Key of a sealed secret in [`Tree::Secrets`].
pub fn secret(kind: &str, id: &str) -> Vec<u8> {
    format!("{kind}/{id}").into_bytes()
}

/// Key of a dev provider record in [`Tree::DevProvider`]: `<kind>/` and
/// the SHA-256 of the code or token (the caller hashes), so no usable one
/// is ever stored.
pub fn dev_record(kind: &str, hash: &[u8; 32]) -> Vec<u8> {
    pair(kind, hash)
}

/// Keys of an index entry `<a>/<b>`.
pub fn pair(a: &str, b: &[u8]) -> Vec<u8> {
    let mut k = a.as_bytes().to_vec();
    k.push(b'/');
    k.extend_from_slice(b);
    k
}
