//! Configuration: `config.toml`, then the environment (the named variables
//! such as `MCP_PORT`, and `DRAWBRIDGE_<SECTION>__<KEY>`), then validation into a
//! [`Config`]. Any problem is a [`ConfigError`] naming the key; the binary
//! exits with status 2 on it.
//!
//! Every key, its default and its variable is documented in `config.toml`
//! at the repository root; `tests` below keeps the two in step.

mod access;
mod env;
mod google;
mod load;
mod pages;
mod sections;
mod settings;
mod summary;
mod validate;

pub use access::AccessSettings;
pub use google::GoogleCredentials;
pub use load::{load, load_from, Sources};
pub use pages::PagesSettings;
pub use sections::*;
pub use settings::*;
pub use validate::{
    read_list_file, Config, ListKind, LogFormat, StorageBackend, StorageMode, UpstreamProvider,
};

use std::fmt;

/// A configuration problem: which key (and variable, when it came from one)
/// and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "configuration error: {}: {}", self.key, self.problem)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests;
