//! Record encoding. Stored records are plain serde structs encoded with
//! bincode 2 (standard configuration); a leading version byte lets a later
//! schema change read old records.

use serde::{de::DeserializeOwned, Serialize};

use super::{StoreError, Tree};

/// The format byte of every record whose schema has not changed since.
pub const FORMAT_V1: u8 = 1;
/// Most bytes one record may decode into. Records are a few kilobytes; the
/// cap turns a damaged length prefix into a `Corrupt` error, where without
/// it bincode allocates whatever the prefix claims and a failed allocation
/// aborts the server.
const MAX_RECORD_BYTES: usize = 16 << 20;

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    encode_format(FORMAT_V1, value)
}

/// Encodes under an explicit format byte: a record whose schema changed is
/// written in its new format, while stored ones keep theirs (see [`format_of`]).
pub fn encode_format<T: Serialize>(format: u8, value: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![format];
    let body = bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|e| StoreError::Encode(e.to_string()))?;
    out.extend_from_slice(&body);
    Ok(out)
}

pub fn decode<T: DeserializeOwned>(tree: Tree, bytes: &[u8]) -> Result<T, StoreError> {
    decode_format(tree, FORMAT_V1, bytes)
}

/// The format byte a record was written with.
pub fn format_of(bytes: &[u8]) -> Option<u8> {
    bytes.first().copied()
}

/// Decodes a record that must have been written under `format`.
pub fn decode_format<T: DeserializeOwned>(
    tree: Tree,
    format: u8,
    bytes: &[u8],
) -> Result<T, StoreError> {
    let config = bincode::config::standard().with_limit::<MAX_RECORD_BYTES>();
    decode_with(tree, format, bytes, config)
}

/// Decodes a whole-store snapshot, which may be larger than any record. It
/// has no cap: it is sealed, so its bytes are the Vault's own.
pub fn decode_snapshot<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    decode_with(Tree::Meta, FORMAT_V1, bytes, bincode::config::standard())
}

fn decode_with<T: DeserializeOwned>(
    tree: Tree,
    format: u8,
    bytes: &[u8],
    config: impl bincode::config::Config,
) -> Result<T, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        tree: tree.name(),
        reason,
    };
    match bytes.split_first() {
        Some((&version, body)) if version == format => {
            let (value, read) = bincode::serde::decode_from_slice(body, config)
                .map_err(|e| corrupt(e.to_string()))?;
            if read != body.len() {
                return Err(corrupt(format!("{} trailing bytes", body.len() - read)));
            }
            Ok(value)
        }
        Some((version, _)) => Err(corrupt(format!("unknown record format {version}"))),
        None => Err(corrupt("empty record".into())),
    }
}
