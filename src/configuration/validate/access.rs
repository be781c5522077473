//! `[access]`: every entry is an address (one `@`) or a domain (no `@`);
//! the list files must be readable and hold only addresses. The same file
//! reading serves the reload on SIGHUP.

use std::path::{Path, PathBuf};

use super::rules::err;
use crate::configuration::{AccessConfig, ConfigError, Settings};
use crate::domain::access::{check_address, check_domain, parse_list};

/// What a list holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Addresses,
    Domains,
}

impl ListKind {
    fn check(self, entry: &str) -> Result<(), String> {
        match self {
            Self::Addresses => check_address(entry),
            Self::Domains => check_domain(entry),
        }
    }
}

/// The entries of a list file (one a line, `#` comments), each checked;
/// the problem names the file and the line's entry.
pub fn read_list_file(path: &Path, kind: ListKind) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let entries = parse_list(&text);
    for entry in &entries {
        kind.check(entry)
            .map_err(|problem| format!("{}: {problem}", path.display()))?;
    }
    Ok(entries)
}

fn list(key: &str, items: &[String], kind: ListKind) -> Result<Vec<String>, ConfigError> {
    let items: Vec<String> = items
        .iter()
        .map(|i| i.trim().to_owned())
        .filter(|i| !i.is_empty())
        .collect();
    for item in &items {
        kind.check(item).map_err(|problem| err(key, problem))?;
    }
    Ok(items)
}

fn file(key: &str, path: &str) -> Result<Option<PathBuf>, ConfigError> {
    let path = path.trim();
    if path.is_empty() {
        return Ok(None);
    }
    let path = PathBuf::from(path);
    read_list_file(&path, ListKind::Addresses).map_err(|problem| err(key, problem))?;
    Ok(Some(path))
}

pub(super) fn validate(s: &Settings) -> Result<AccessConfig, ConfigError> {
    let a = &s.access;
    Ok(AccessConfig {
        allowed_emails: list(
            "access.allowed_emails",
            &a.allowed_emails,
            ListKind::Addresses,
        )?,
        allowed_domains: list(
            "access.allowed_domains",
            &a.allowed_domains,
            ListKind::Domains,
        )?,
        google_workspace_domains: list(
            "access.google_workspace_domains",
            &a.google_workspace_domains,
            ListKind::Domains,
        )?,
        denied_emails: list(
            "access.denied_emails",
            &a.denied_emails,
            ListKind::Addresses,
        )?,
        allowed_emails_file: file("access.allowed_emails_file", &a.allowed_emails_file)?,
        denied_emails_file: file("access.denied_emails_file", &a.denied_emails_file)?,
    })
}
