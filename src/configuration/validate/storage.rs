//! `[storage]`: where records are kept, the encryption key, durability.

use std::path::PathBuf;
use std::time::Duration;

use super::rules::{err, pem_roots, ranged};
use crate::configuration::{ConfigError, Settings, StorageConfig};
use crate::storage::PgOptions;

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

/// Which engine keeps the records of the on-disk modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageBackend {
    /// A sled database in `credentials_dir`: one process.
    Sled,
    /// One PostgreSQL database that several instances share.
    Postgres,
}

impl StorageBackend {
    pub fn as_str(self) -> &'static str {
        match self {
            StorageBackend::Sled => "sled",
            StorageBackend::Postgres => "postgres",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Sled, Self::Postgres]
            .into_iter()
            .find(|b| b.as_str().eq_ignore_ascii_case(raw.trim()))
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
    let (backend, postgres) = postgres(s, mode)?;
    Ok(StorageConfig {
        mode,
        credentials_dir: PathBuf::from(&s.storage.credentials_dir),
        flush_every_write,
        backup_interval: Duration::from_secs(backup),
        encryption_key: s.storage.encryption_key.clone(),
        encryption_key_file: PathBuf::from(&s.storage.encryption_key_file),
        allow_insecure_key_permissions: s.storage.allow_insecure_key_permissions,
        backend,
        postgres,
        lease: Duration::from_secs(ranged(
            "storage.lease_seconds",
            s.storage.lease_seconds,
            3,
            3600,
        )?),
    })
}

/// The backend, and the database's URL, TLS roots and bounds: checked
/// with `backend = "postgres"`; with sled, taken when they are valid (so
/// `migrate-storage --to-backend postgres` can reach the database) and
/// otherwise left alone.
fn postgres(
    s: &Settings,
    mode: StorageMode,
) -> Result<(StorageBackend, Option<PgOptions>), ConfigError> {
    let backend = StorageBackend::parse(&s.storage.backend).ok_or_else(|| {
        err(
            "storage.backend",
            format!("expected sled or postgres, got `{}`", s.storage.backend),
        )
    })?;
    match backend {
        StorageBackend::Sled => Ok((backend, pg_options(s, mode).ok().flatten())),
        StorageBackend::Postgres => Ok((backend, pg_options(s, mode)?)),
    }
}

fn pg_options(s: &Settings, mode: StorageMode) -> Result<Option<PgOptions>, ConfigError> {
    let st = &s.storage;
    if !mode.on_disk() {
        return Err(err(
            "storage.backend",
            format!(
                "postgres keeps records in the database: it works with FILE_ENCRYPTED (values sealed with the key file, which every instance must share) or FILE_PLAINTEXT, not {}",
                mode.as_str()
            ),
        ));
    }
    let url = st.database_url.0.trim();
    if url.is_empty() {
        return Err(err(
            "storage.database_url",
            "backend postgres needs a database URL (DATABASE_URL), e.g. postgres://drawbridge:PASSWORD@db.internal:5432/drawbridge?sslmode=verify-full",
        ));
    }
    crate::storage::postgres::parse_url(url).map_err(|e| err("storage.database_url", e))?;
    let pool_size = ranged("storage.pool_size", st.pool_size, 1, 1000)?;
    let timeout = ranged(
        "storage.statement_timeout_ms",
        st.statement_timeout_ms,
        100,
        600_000,
    )?;
    Ok(Some(PgOptions {
        url: url.to_owned(),
        ca_pem: pem_roots("storage.database_ca_file", &st.database_ca_file)?,
        pool_size: pool_size as usize,
        statement_timeout: Duration::from_millis(timeout),
    }))
}
