//! The operator commands that work on stored data while the service is
//! stopped: `rotate-key` and `migrate-storage`.

use crate::actors::vault::RotationReport;
use crate::clock::UnixTime;
use crate::configuration::{Config, StorageMode};
use crate::persistence::{self, data_path, PersistenceError};
use crate::storage::Tree;

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
    Ok(opened.vault_core(true).rotate(now)?)
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

/// Copies every record of `from` into `to`, re-sealing vault records for
/// the target. Records already present and identical are skipped, so it can
/// run again; the source is never changed, and stays as a backup.
pub fn migrate_storage(
    config: &Config,
    from: StorageMode,
    to: StorageMode,
    now: UnixTime,
) -> Result<MigrationReport, CommandError> {
    if from == to {
        return Err(CommandError::Usage(
            "--from and --to name the same mode".into(),
        ));
    }
    if from == StorageMode::MemoryOnly || to == StorageMode::MemoryOnly {
        return Err(CommandError::Usage(
            "MEMORY_ONLY keeps nothing to migrate from or to".into(),
        ));
    }
    let mut lock_config = config.clone();
    lock_config.storage.mode = to;
    let _lock = persistence::lock_dir(&lock_config)?;
    let source = persistence::open_mode(config, from, true, now)?;
    let target = persistence::open_mode(config, to, false, now)?;
    let dir = &config.storage.credentials_dir;
    let mut report = MigrationReport {
        source: data_path(from, dir)
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        target: data_path(to, dir)
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
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
    let derived = [Tree::Counters, Tree::Leases];
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
