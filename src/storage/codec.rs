//! Record encoding. Stored records are plain serde structs encoded with
//! bincode 2 (standard configuration); a leading version byte lets a later
//! schema change read old records.

use serde::{de::DeserializeOwned, Serialize};

use super::{StoreError, Tree};

const FORMAT_V1: u8 = 1;

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![FORMAT_V1];
    let body = bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|e| StoreError::Encode(e.to_string()))?;
    out.extend_from_slice(&body);
    Ok(out)
}

pub fn decode<T: DeserializeOwned>(tree: Tree, bytes: &[u8]) -> Result<T, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        tree: tree.name(),
        reason,
    };
    match bytes.split_first() {
        Some((&FORMAT_V1, body)) => {
            let (value, read) =
                bincode::serde::decode_from_slice(body, bincode::config::standard())
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
