//! Opening the configured storage mode: where its data lives, the store
//! engine, how vault values are sealed, and the lock that keeps two
//! processes off the same data.
//!
//! | mode                 | data (in `CREDENTIALS_DIR`) | vault values                  |
//! |----------------------|-----------------------------|-------------------------------|
//! | `FILE_ENCRYPTED`     | `drawbridge.db/` (sled)     | sealed with the key file      |
//! | `FILE_PLAINTEXT`     | `drawbridge-plaintext.db/`  | as they are                   |
//! | `MEMORY_ONLY`        | nothing                     | sealed with a key never stored|
//! | `MEMORY_WITH_BACKUP` | `drawbridge.snapshot`       | sealed; snapshot sealed too   |
//!
//! With `storage.backend = "postgres"`, FILE_ENCRYPTED and FILE_PLAINTEXT
//! keep their records in the shared database instead (one table; the key
//! file is still read, or created, in the same place, and every instance
//! must share it), and no directory lock is taken: several instances use
//! the database at once.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::actors::vault::{restore_snapshot, Snapshot, VaultCore, VaultError};
use crate::clock::UnixTime;
use crate::configuration::{Config, StorageBackend, StorageMode};
use crate::crypto::cipher::{Codec, Keyring};
use crate::crypto::keyfile::{self, KeySource};
use crate::storage::{
    keys, postgres, MemoryStore, Owned, PgStore, ReadStore, SharedStore, SledStore, Tree,
};

pub const ENCRYPTED_DB: &str = "drawbridge.db";
pub const PLAINTEXT_DB: &str = "drawbridge-plaintext.db";
pub const SNAPSHOT_FILE: &str = "drawbridge.snapshot";
const LOCK_FILE: &str = "drawbridge.lock";

#[derive(Debug, thiserror::Error)]
pub enum PersistenceError {
    #[error("{0}")]
    Storage(String),
    #[error(transparent)]
    Key(#[from] keyfile::KeyFileError),
    #[error("{0} is in use by another Drawbridge process; stop it first")]
    Locked(String),
    #[error("no {mode} data at {path}")]
    Missing { mode: &'static str, path: String },
    /// Sealed data exists but its key file does not: a new key would make
    /// every sealed record unreadable, so start-up stops instead.
    #[error("the key file {key} is missing, but {data} holds data sealed with its key: restore the key file (or set AUTH_ENCRYPTION_KEY to the key); to start afresh instead, move {data} away")]
    KeyMissing { key: String, data: String },
}

impl From<VaultError> for PersistenceError {
    fn from(e: VaultError) -> Self {
        PersistenceError::Storage(e.to_string())
    }
}

/// A storage mode opened: the store and how vault values are sealed.
pub struct Opened {
    pub mode: StorageMode,
    pub store: SharedStore,
    pub codec: Codec,
    pub key_source: Option<KeySource>,
    pub snapshot: Option<PathBuf>,
}

impl Opened {
    /// The Vault's core over this mode's store: handed the Vault's own
    /// trees, and (MEMORY_WITH_BACKUP) the whole store read-only for its
    /// snapshot.
    pub fn vault_core(&self, flush_every_write: bool) -> VaultCore {
        VaultCore::new(
            Owned::new(self.store.clone()),
            self.codec.clone(),
            self.key_source.clone(),
            flush_every_write,
            self.snapshot(),
        )
    }

    /// Where the snapshot goes and what it copies (MEMORY_WITH_BACKUP).
    pub fn snapshot(&self) -> Option<Snapshot> {
        let path = self.snapshot.clone()?;
        Some(Snapshot::new(path, ReadStore::new(self.store.clone())))
    }
}

/// Where a mode keeps its data, if anywhere.
pub fn data_path(mode: StorageMode, dir: &Path) -> Option<PathBuf> {
    match mode {
        StorageMode::FileEncrypted => Some(dir.join(ENCRYPTED_DB)),
        StorageMode::FilePlaintext => Some(dir.join(PLAINTEXT_DB)),
        StorageMode::MemoryWithBackup => Some(dir.join(SNAPSHOT_FILE)),
        StorageMode::MemoryOnly => None,
    }
}

/// Takes the data directory's lock (created 0700 when missing). Held for as
/// long as the returned file lives. MEMORY_ONLY needs none.
pub fn lock_dir(config: &Config) -> Result<Option<File>, PersistenceError> {
    if config.storage.mode == StorageMode::MemoryOnly || on_postgres(config, config.storage.mode) {
        return Ok(None);
    }
    let dir = &config.storage.credentials_dir;
    create_private_dir(dir)
        .map_err(|e| PersistenceError::Storage(format!("cannot create {}: {e}", dir.display())))?;
    let path = dir.join(LOCK_FILE);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| PersistenceError::Storage(format!("{}: {e}", path.display())))?;
    file.try_lock()
        .map_err(|_| PersistenceError::Locked(dir.display().to_string()))?;
    Ok(Some(file))
}

/// Whether `mode`'s records live in PostgreSQL under `config`.
fn on_postgres(config: &Config, mode: StorageMode) -> bool {
    config.storage.backend == StorageBackend::Postgres && mode.on_disk()
}

/// The keyring for modes that encrypt: from `AUTH_ENCRYPTION_KEY` when set,
/// else the key file (created on first use when `create`, unless `sealed`
/// — the data sealed with it — already exists).
pub fn keyring(
    config: &Config,
    create: bool,
    sealed: &Path,
    now: UnixTime,
) -> Result<(Keyring, KeySource), PersistenceError> {
    keyring_for(
        config,
        create,
        sealed.exists(),
        &sealed.display().to_string(),
        now,
    )
}

/// [`keyring`], where `sealed_exists` says whether data sealed with the key
/// exists, and `sealed` names it.
fn keyring_for(
    config: &Config,
    create: bool,
    sealed_exists: bool,
    sealed: &str,
    now: UnixTime,
) -> Result<(Keyring, KeySource), PersistenceError> {
    let storage = &config.storage;
    if !storage.encryption_key.0.is_empty() {
        return Ok((
            keyfile::from_env(&storage.encryption_key.0)?,
            KeySource::Env,
        ));
    }
    let path = PathBuf::from(&storage.encryption_key_file);
    if create && !path.exists() && sealed_exists {
        return Err(PersistenceError::KeyMissing {
            key: path.display().to_string(),
            data: sealed.to_owned(),
        });
    }
    let ring = if create {
        keyfile::load_or_create(&path, storage.allow_insecure_key_permissions, now)?
    } else {
        keyfile::load(&path, storage.allow_insecure_key_permissions)?
    };
    Ok((ring, KeySource::File(path)))
}

/// Opens `mode` with `config`'s directory, backend and keys. With
/// `must_exist`, a mode whose data is missing is an error (a migration
/// source).
pub fn open_mode(
    config: &Config,
    mode: StorageMode,
    must_exist: bool,
    now: UnixTime,
) -> Result<Opened, PersistenceError> {
    if on_postgres(config, mode) {
        let opened = open_postgres(config, mode, must_exist, now)?;
        check_schema(&opened.store)?;
        return Ok(opened);
    }
    let dir = &config.storage.credentials_dir;
    let path = data_path(mode, dir);
    if must_exist && !path.as_ref().is_some_and(|p| p.exists()) {
        return Err(PersistenceError::Missing {
            mode: mode.as_str(),
            path: path.map_or_else(|| "(memory)".into(), |p| p.display().to_string()),
        });
    }
    let storage_err = |e: crate::storage::StoreError| PersistenceError::Storage(e.to_string());
    let opened = match mode {
        StorageMode::FileEncrypted => {
            let db = dir.join(ENCRYPTED_DB);
            let (ring, source) = keyring(config, !must_exist, &db, now)?;
            let store: SharedStore = Arc::new(SledStore::open(&db).map_err(storage_err)?);
            Opened {
                mode,
                store,
                codec: Codec::Sealed(ring),
                key_source: Some(source),
                snapshot: None,
            }
        }
        StorageMode::FilePlaintext => {
            let store: SharedStore =
                Arc::new(SledStore::open(&dir.join(PLAINTEXT_DB)).map_err(storage_err)?);
            Opened {
                mode,
                store,
                codec: Codec::Plain,
                key_source: None,
                snapshot: None,
            }
        }
        StorageMode::MemoryOnly => Opened {
            mode,
            store: Arc::new(MemoryStore::new()),
            codec: Codec::Sealed(Keyring::generate(now)),
            key_source: None,
            snapshot: None,
        },
        StorageMode::MemoryWithBackup => {
            let snapshot = dir.join(SNAPSHOT_FILE);
            let (ring, source) = keyring(config, !must_exist, &snapshot, now)?;
            let codec = Codec::Sealed(ring);
            let store: SharedStore = Arc::new(MemoryStore::new());
            if snapshot.exists() {
                let n = restore_snapshot(&snapshot, &codec, &store)?;
                tracing::info!(records = n, path = %snapshot.display(), "restored the encrypted snapshot");
            }
            Opened {
                mode,
                store,
                codec,
                key_source: Some(source),
                snapshot: Some(snapshot),
            }
        }
    };
    check_schema(&opened.store)?;
    Ok(opened)
}

/// Where the database is, for messages (password masked).
pub fn database_name(config: &Config) -> String {
    config.storage.postgres.as_ref().map_or_else(
        || "(storage.database_url not set)".into(),
        |pg| postgres::masked_url(&pg.url),
    )
}

/// FILE_ENCRYPTED or FILE_PLAINTEXT on the shared PostgreSQL database.
fn open_postgres(
    config: &Config,
    mode: StorageMode,
    must_exist: bool,
    now: UnixTime,
) -> Result<Opened, PersistenceError> {
    let options = config.storage.postgres.as_ref().ok_or_else(|| {
        PersistenceError::Storage(
            "the postgres backend needs storage.database_url (DATABASE_URL)".into(),
        )
    })?;
    let storage = |e: crate::storage::StoreError| PersistenceError::Storage(e.to_string());
    let store: SharedStore = Arc::new(
        PgStore::open(options)
            .map_err(storage)?
            .observed(Box::new(crate::metrics::record_database_call)),
    );
    let holds = |tree| {
        store
            .scan_prefix(tree, b"", None, 1)
            .map(|page| !page.is_empty())
            .map_err(storage)
    };
    let name = database_name(config);
    // Every opened store has its schema record (see `check_schema`).
    if must_exist && !holds(Tree::Meta)? {
        return Err(PersistenceError::Missing {
            mode: mode.as_str(),
            path: name,
        });
    }
    let (codec, key_source) = match mode {
        StorageMode::FileEncrypted => {
            let sealed = holds(Tree::Users)? || holds(Tree::Secrets)?;
            let (ring, source) = keyring_for(config, !must_exist, sealed, &name, now)?;
            (Codec::Sealed(ring), Some(source))
        }
        _ => (Codec::Plain, None),
    };
    Ok(Opened {
        mode,
        store,
        codec,
        key_source,
        snapshot: None,
    })
}

fn check_schema(store: &SharedStore) -> Result<(), PersistenceError> {
    let storage = |e: crate::storage::StoreError| PersistenceError::Storage(e.to_string());
    match store.get(Tree::Meta, keys::SCHEMA_KEY).map_err(storage)? {
        None => {
            store.insert(Tree::Meta, keys::SCHEMA_KEY, keys::SCHEMA_VERSION.to_be_bytes().to_vec()).map_err(storage)?;
            store.flush().map_err(storage)
        }
        Some(v) if v.as_slice() == keys::SCHEMA_VERSION.to_be_bytes() => Ok(()),
        Some(v) => Err(PersistenceError::Storage(format!(
            "the data was written by another version of Drawbridge (schema {v:?}, this build reads {})",
            keys::SCHEMA_VERSION
        ))),
    }
}

/// Data of another mode lying next to an empty store usually means the
/// operator changed `CREDENTIAL_STORAGE_MODE` without migrating.
pub fn warn_about_other_modes(config: &Config, store: &SharedStore) {
    let none_in = |tree| {
        store
            .scan_prefix(tree, b"", None, 1)
            .map(|page| page.is_empty())
            .unwrap_or(false)
    };
    let empty = none_in(Tree::Clients) && none_in(Tree::Users);
    if !empty {
        return;
    }
    for other in [
        StorageMode::FileEncrypted,
        StorageMode::FilePlaintext,
        StorageMode::MemoryWithBackup,
    ] {
        if other == config.storage.mode {
            continue;
        }
        if let Some(path) = data_path(other, &config.storage.credentials_dir).filter(|p| p.exists())
        {
            tracing::warn!(
                path = %path.display(),
                "found {} data but running {}; to carry it over run: drawbridge migrate-storage --from {} --to {}",
                other.as_str(), config.storage.mode.as_str(), other.as_str(), config.storage.mode.as_str()
            );
        }
    }
}

#[cfg(unix)]
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(dir = %dir.display(), mode = format!("{mode:o}"), "credentials directory is readable by others; run: chmod 700 {}", dir.display());
    }
    Ok(())
}

#[cfg(not(unix))]
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}
