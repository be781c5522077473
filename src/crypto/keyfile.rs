//! The key file (`AUTH_ENCRYPTION_KEY_FILE`): created on first start with
//! mode 0600, refused when others can read it, rewritten atomically.
//! A key can instead come from `AUTH_ENCRYPTION_KEY` (base64 of 32 bytes),
//! for containers that mount secrets as variables.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::cipher::{DataKey, Keyring, KEY_LEN};

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("encryption key file {path} is readable by group or others (mode {mode:o}); run: chmod 600 {path}")]
    Permissions { path: String, mode: u32 },
    #[error("encryption key file {path}: {problem}")]
    Invalid { path: String, problem: String },
    #[error("encryption key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("AUTH_ENCRYPTION_KEY: {0}")]
    Env(String),
}

#[derive(Serialize, Deserialize)]
struct FileFormat {
    format: String,
    current: String,
    index_key: String,
    keys: Vec<FileKey>,
}

#[derive(Serialize, Deserialize)]
struct FileKey {
    id: String,
    key: String,
    created_at: i64,
}

const FORMAT: &str = "drawbridge-keyring-v1";

/// Where the keyring lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    File(PathBuf),
    /// From the environment: cannot be rewritten, so it cannot rotate here.
    Env,
}

/// Loads the keyring from `path`, creating it (mode 0600) when missing.
pub fn load_or_create(
    path: &Path,
    allow_insecure: bool,
    now: i64,
) -> Result<Keyring, KeyFileError> {
    if !path.exists() {
        let ring = Keyring::generate(now);
        save(path, &ring)?;
        tracing::info!(path = %path.display(), key_id = ring.current_id(), "Generated a new encryption key");
        return Ok(ring);
    }
    load(path, allow_insecure)
}

/// Loads an existing keyring.
pub fn load(path: &Path, allow_insecure: bool) -> Result<Keyring, KeyFileError> {
    let shown = path.display().to_string();
    check_permissions(path, allow_insecure)?;
    let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Io {
        path: shown.clone(),
        source,
    })?;
    let invalid = |problem: &str| KeyFileError::Invalid {
        path: shown.clone(),
        problem: problem.to_owned(),
    };
    let file: FileFormat =
        serde_json::from_str(&text).map_err(|_| invalid("not a Drawbridge key file"))?;
    if file.format != FORMAT {
        return Err(invalid("unknown key file format"));
    }
    let index_key =
        decode_key(&file.index_key).ok_or_else(|| invalid("index_key is not 32 base64 bytes"))?;
    let keys = file
        .keys
        .iter()
        .map(|k| {
            let bytes =
                decode_key(&k.key).ok_or_else(|| invalid("a key is not 32 base64 bytes"))?;
            Ok(DataKey {
                id: k.id.clone(),
                bytes,
                created_at: k.created_at,
            })
        })
        .collect::<Result<Vec<_>, KeyFileError>>()?;
    Keyring::new(keys, &file.current, index_key)
        .ok_or_else(|| invalid("the current key is not in the file"))
}

/// Writes the keyring atomically: a 0600 temporary file, fsync, rename.
pub fn save(path: &Path, ring: &Keyring) -> Result<(), KeyFileError> {
    let file = FileFormat {
        format: FORMAT.into(),
        current: ring.current_id().to_owned(),
        index_key: STANDARD.encode(ring.index_key()),
        keys: ring
            .keys()
            .iter()
            .map(|k| FileKey {
                id: k.id.clone(),
                key: STANDARD.encode(k.bytes),
                created_at: k.created_at,
            })
            .collect(),
    };
    let text = serde_json::to_string_pretty(&file).expect("key file serialises");
    write_private_atomically(path, text.as_bytes()).map_err(|source| KeyFileError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// A keyring from `AUTH_ENCRYPTION_KEY`: one key whose id and index key are
/// derived from it, so the same variable always yields the same keyring.
pub fn from_env(value: &str) -> Result<Keyring, KeyFileError> {
    let bytes = decode_key(value.trim())
        .ok_or_else(|| KeyFileError::Env("expected 32 bytes in base64".into()))?;
    let digest = Sha256::digest(bytes);
    let id = format!("env-{}", super::hex(&digest[..4]));
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&bytes).expect("any key length");
    mac.update(b"drawbridge blind index key");
    let index_key: [u8; KEY_LEN] = mac.finalize().into_bytes().into();
    Ok(Keyring::new(
        vec![DataKey {
            id: id.clone(),
            bytes,
            created_at: 0,
        }],
        &id,
        index_key,
    )
    .expect("current key present"))
}

fn decode_key(b64: &str) -> Option<[u8; KEY_LEN]> {
    STANDARD.decode(b64).ok()?.try_into().ok()
}

#[cfg(unix)]
fn check_permissions(path: &Path, allow_insecure: bool) -> Result<(), KeyFileError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| KeyFileError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        if allow_insecure {
            tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "encryption key file is readable by others (allowed by storage.allow_insecure_key_permissions)");
        } else {
            return Err(KeyFileError::Permissions {
                path: path.display().to_string(),
                mode,
            });
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_: &Path, _: bool) -> Result<(), KeyFileError> {
    Ok(())
}

/// Writes `bytes` to `path` so that a crash leaves either the old file or
/// the new one, never a mix: temporary file (0600), fsync, rename, fsync dir.
pub fn write_private_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("drawbridge")
    ));
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_file_is_0600_and_loads_back_the_same_keyring() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join(".key");
        let ring = load_or_create(&path, false, 5).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let again = load_or_create(&path, false, 6).unwrap();
        assert_eq!(again.current_id(), ring.current_id());
        let sealed = ring.seal("k", b"r", b"v");
        assert_eq!(again.open("k", b"r", &sealed).unwrap(), b"v");
    }

    #[cfg(unix)]
    #[test]
    fn a_readable_key_file_is_refused_with_the_chmod_to_run() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".key");
        load_or_create(&path, false, 0).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load(&path, false).unwrap_err().to_string();
        assert!(
            err.contains(&format!("chmod 600 {}", path.display())),
            "{err}"
        );
        assert!(load(&path, true).is_ok());
    }

    #[test]
    fn garbage_key_files_and_env_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".key");
        write_private_atomically(&path, b"not json").unwrap();
        assert!(matches!(
            load(&path, false),
            Err(KeyFileError::Invalid { .. })
        ));
        assert!(from_env("short").is_err());
        let env = STANDARD.encode([7u8; 32]);
        assert_eq!(
            from_env(&env).unwrap().current_id(),
            from_env(&env).unwrap().current_id()
        );
    }
}
