//! `[access]` as written in `config.toml` and the environment: who may
//! sign in. Validated into [`AccessConfig`](super::AccessConfig).

use serde::{Deserialize, Serialize};

/// `[access]`: who may sign in. Empty allow lists: anyone (as before).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AccessSettings {
    /// Verified addresses that may sign in.
    pub allowed_emails: Vec<String>,
    /// Domains whose verified addresses may sign in (exact match).
    pub allowed_domains: Vec<String>,
    /// Google Workspace domains, matched on the ID token's `hd` claim.
    pub google_workspace_domains: Vec<String>,
    /// Addresses refused whatever the allow lists say.
    pub denied_emails: Vec<String>,
    /// A file of more allowed addresses (one a line, `#` comments),
    /// read again on SIGHUP.
    pub allowed_emails_file: String,
    /// A file of more denied addresses, read again on SIGHUP.
    pub denied_emails_file: String,
}
