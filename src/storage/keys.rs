//! The key layout: every tree Drawbridge writes, who owns it, and how its
//! keys are built. This file is the one place to read to understand what
//! is on disk.
//!
//! | tree      | owner    | key                           | value                                   |
//! |-----------|----------|-------------------------------|-----------------------------------------|
//! | `meta`    | startup  | UTF-8 name, e.g. `schema`     | engine metadata (schema version)        |
//! | `clients` | Registry | client id (`mcp_…`), UTF-8    | `ClientRecord` (bincode, see `codec`)   |
//!
//! Secrets never appear in keys: client secrets and registration access
//! tokens are stored as SHA-256 hashes inside the client record.

/// A named tree (a keyspace). Each actor alone writes its own trees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tree {
    Meta,
    Clients,
}

impl Tree {
    pub const ALL: [Tree; 2] = [Tree::Meta, Tree::Clients];

    pub fn name(self) -> &'static str {
        match self {
            Tree::Meta => "meta",
            Tree::Clients => "clients",
        }
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
