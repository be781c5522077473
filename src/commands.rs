//! The operator commands that work on stored data while the service is
//! stopped: `rotate-key` and `migrate-storage`; and `migrate-db`, which
//! brings a shared PostgreSQL database's schema up to date.

use crate::actors::vault::RotationReport;
use crate::clock::UnixTime;
use crate::configuration::{Config, StorageBackend, StorageMode};
use crate::persistence::{self, data_path, PersistenceError};
use crate::storage::{PgStore, Tree};

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Persistence(#[from] PersistenceError),
    #[error("{0}")]
    Vault(#[from] crate::actors::vault::VaultError),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Store(#[from] crate::storage::StoreError),
}

/// Rotates the encryption key of the configured mode (or completes an
/// interrupted rotation).
pub fn rotate_key(config: &Config, now: UnixTime) -> Result<RotationReport, CommandError> {
    match config.storage.mode {
        StorageMode::FileEncrypted | StorageMode::MemoryWithBackup => {}
        other => {
            return Err(CommandError::Usage(format!(
                "{} keeps no encryption key to rotate",
                other.as_str()
            )));
        }
    }
    let _lock = persistence::lock_dir(config)?;
    let opened = persistence::open_mode(config, config.storage.mode, false, now)?;
    // On a shared database other instances may be running: keep the old
    // keys until the rotation is run again (see `VaultCore::rotate`).
    let shared = opened.store.is_remote();
    Ok(opened
        .vault_core(true)
        .with_shared_keys(shared)
        .rotate(now)?)
}

/// What a migration did, per kind of record.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Clients, grants, tokens and pending sign-ins (copied as they are).
    pub clients_migrated: usize,
    pub clients_skipped: usize,
    pub vault_migrated: usize,
    pub vault_skipped: usize,
    /// Records that could not be read from the source; they stay there.
    pub unreadable: Vec<String>,
    pub source: String,
    pub target: String,
}

impl MigrationReport {
    pub fn migrated(&self) -> usize {
        self.clients_migrated + self.vault_migrated
    }

    pub fn skipped(&self) -> usize {
        self.clients_skipped + self.vault_skipped
    }
}

/// Applies the schema migrations to the configured PostgreSQL database;
/// returns its schema version.
pub fn migrate_db(config: &Config) -> Result<i32, CommandError> {
    let options = config.storage.postgres.as_ref().ok_or_else(|| {
        CommandError::Usage(
            "no database configured: set storage.database_url (DATABASE_URL), with storage.backend = \"postgres\"".into(),
        )
    })?;
    Ok(PgStore::open(options)?.schema_version())
}

/// Copies every record of `from` into `to`, both in the configured
/// backend; see [`migrate_between`].
pub fn migrate_storage(
    config: &Config,
    from: StorageMode,
    to: StorageMode,
    now: UnixTime,
) -> Result<MigrationReport, CommandError> {
    let backend = config.storage.backend;
    migrate_between(config, (from, backend), (to, backend), now)
}

/// Where a mode's data is, for the report.
fn location(config: &Config, mode: StorageMode, backend: StorageBackend) -> String {
    if backend == StorageBackend::Postgres && mode.on_disk() {
        return persistence::database_name(config);
    }
    data_path(mode, &config.storage.credentials_dir)
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// `config` with its records in `backend`.
fn on(config: &Config, backend: StorageBackend) -> Config {
    let mut config = config.clone();
    config.storage.backend = backend;
    config
}

/// Copies every record of `from` into `to` (a mode in a backend: sled to
/// PostgreSQL and back too), re-sealing vault records for the target.
/// Records already present and identical are skipped, so it can run
/// again; the source is never changed, and stays as a backup.
pub fn migrate_between(
    config: &Config,
    from: (StorageMode, StorageBackend),
    to: (StorageMode, StorageBackend),
    now: UnixTime,
) -> Result<MigrationReport, CommandError> {
    let postgres = StorageBackend::Postgres;
    if from == to || (from.1 == postgres && to.1 == postgres && from.0.on_disk() && to.0.on_disk())
    {
        return Err(CommandError::Usage(
            "--from and --to name the same data (on postgres, FILE_ENCRYPTED and FILE_PLAINTEXT share one table)".into(),
        ));
    }
    if from.0 == StorageMode::MemoryOnly || to.0 == StorageMode::MemoryOnly {
        return Err(CommandError::Usage(
            "MEMORY_ONLY keeps nothing to migrate from or to".into(),
        ));
    }
    for (mode, backend) in [from, to] {
        if backend == postgres && !mode.on_disk() {
            return Err(CommandError::Usage(format!(
                "{} keeps nothing in a database: postgres takes FILE_ENCRYPTED or FILE_PLAINTEXT",
                mode.as_str()
            )));
        }
    }
    let (from_config, to_config) = (on(config, from.1), on(config, to.1));
    let mut lock_config = to_config.clone();
    lock_config.storage.mode = to.0;
    let _lock = persistence::lock_dir(&lock_config)?;
    let source = persistence::open_mode(&from_config, from.0, true, now)?;
    let target = persistence::open_mode(&to_config, to.0, false, now)?;
    let mut report = MigrationReport {
        source: location(config, from.0, from.1),
        target: location(config, to.0, to.1),
        ..Default::default()
    };

    // Trees without sealed values move byte for byte; the Vault's trees are
    // opened and re-sealed for the target below.
    let vault_trees = [
        Tree::Meta,
        Tree::Users,
        Tree::UserEmails,
        Tree::UserIds,
        Tree::Secrets,
    ];
    // The shared client count is derived: the first instance that needs it
    // on the target counts the clients again (a copied count could be stale).
    // Leases and the dev provider's codes and tokens are short-lived state
    // of the running instances (the demo user signs in again).
    let derived = [Tree::Counters, Tree::Leases, Tree::DevProvider];
    for tree in Tree::ALL
        .into_iter()
        .filter(|t| !vault_trees.contains(t) && !derived.contains(t))
    {
        for (key, value) in crate::actors::vault::scan_all(&source.store, tree)? {
            if target.store.get(tree, &key)?.as_deref() == Some(&value[..]) {
                report.clients_skipped += 1;
            } else {
                target.store.insert(tree, &key, value)?;
                report.clients_migrated += 1;
            }
        }
    }
    let (items, unreadable) = source.vault_core(true).export()?;
    report.unreadable = unreadable;
    let mut target_vault = target.vault_core(true);
    for item in items {
        if target_vault.import(item)? {
            report.vault_migrated += 1;
        } else {
            report.vault_skipped += 1;
        }
    }
    target_vault.flush()?;
    target_vault.write_snapshot()?;
    Ok(report)
}
