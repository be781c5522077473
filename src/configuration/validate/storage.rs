//! `[storage]`: where records are kept, the encryption key, durability.

use std::path::PathBuf;
use std::time::Duration;

use super::rules::{err, ranged};
use crate::configuration::{ConfigError, Settings, StorageConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageMode {
    FileEncrypted,
    FilePlaintext,
    MemoryOnly,
    MemoryWithBackup,
}

impl StorageMode {
    pub fn as_str(self) -> &'static str {
        match self {
            StorageMode::FileEncrypted => "FILE_ENCRYPTED",
            StorageMode::FilePlaintext => "FILE_PLAINTEXT",
            StorageMode::MemoryOnly => "MEMORY_ONLY",
            StorageMode::MemoryWithBackup => "MEMORY_WITH_BACKUP",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::FileEncrypted,
            Self::FilePlaintext,
            Self::MemoryOnly,
            Self::MemoryWithBackup,
        ]
        .into_iter()
        .find(|m| m.as_str().eq_ignore_ascii_case(raw))
    }

    /// Whether records are kept in the on-disk database.
    pub fn on_disk(self) -> bool {
        matches!(
            self,
            StorageMode::FileEncrypted | StorageMode::FilePlaintext
        )
    }
}

pub(super) fn validate(s: &Settings) -> Result<StorageConfig, ConfigError> {
    let mode = StorageMode::parse(&s.storage.mode).ok_or_else(|| {
        err("storage.mode", format!("expected FILE_ENCRYPTED, FILE_PLAINTEXT, MEMORY_ONLY or MEMORY_WITH_BACKUP, got `{}`", s.storage.mode))
    })?;
    if s.storage.credentials_dir.trim().is_empty() {
        return Err(err("storage.credentials_dir", "must not be empty"));
    }
    let backup = ranged(
        "storage.backup_interval_seconds",
        s.storage.backup_interval_seconds,
        1,
        86400,
    )?;
    if s.storage.encryption_key_file.trim().is_empty() && s.storage.encryption_key.0.is_empty() {
        return Err(err("storage.encryption_key_file", "must not be empty"));
    }
    if !s.storage.encryption_key.0.is_empty() {
        crate::crypto::keyfile::from_env(&s.storage.encryption_key.0).map_err(|_| {
            err(
                "storage.encryption_key",
                "expected 32 bytes in base64 (e.g. from: openssl rand -base64 32)",
            )
        })?;
    }
    let flush_every_write = match s.storage.durability.as_str() {
        "immediate" => true,
        "periodic" => false,
        other => {
            return Err(err(
                "storage.durability",
                format!("expected immediate or periodic, got `{other}`"),
            ))
        }
    };
    Ok(StorageConfig {
        mode,
        credentials_dir: PathBuf::from(&s.storage.credentials_dir),
        flush_every_write,
        backup_interval: Duration::from_secs(backup),
        encryption_key: s.storage.encryption_key.clone(),
        encryption_key_file: PathBuf::from(&s.storage.encryption_key_file),
        allow_insecure_key_permissions: s.storage.allow_insecure_key_permissions,
    })
}
