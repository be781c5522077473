//! Key rotation: a new current key, every record re-sealed under it, the
//! old keys retired once no record uses them. Each step is safe to stop
//! after; running again completes an interrupted rotation.

use std::path::PathBuf;

use super::VaultCore;
use crate::actors::vault::cipher::{sealed_key_id, Codec, DataKey};
use crate::actors::vault::keyfile::{self, KeySource};
use crate::actors::vault::messages::RotationReport;
use crate::actors::vault::reader::{secret_kind, USER};
use crate::actors::vault::VaultError;
use crate::clock::UnixTime;
use crate::storage::{OwnedBatch, Tree, VaultTree};

impl VaultCore {
    /// Step 1: adds a new current key and persists the keyring before any
    /// record uses it. Does nothing when a rotation is already under way
    /// (the keyring holds more than one key).
    pub fn begin_rotation(&mut self, now: UnixTime) -> Result<String, VaultError> {
        let path = self.rotatable_key_file()?;
        let Codec::Sealed(ring) = &mut self.codec else {
            return Err(VaultError::NoEncryption);
        };
        if ring.keys().len() == 1 {
            let mut next = ring.clone();
            next.add_current(DataKey::generate(now));
            keyfile::save(&path, &next)?;
            *ring = next;
        }
        let current = ring.current_id().to_owned();
        self.publish();
        Ok(current)
    }

    /// Step 2: re-seals up to `limit` records under the current key.
    pub fn reseal(
        &mut self,
        limit: usize,
        report: &mut RotationReport,
    ) -> Result<usize, VaultError> {
        let Codec::Sealed(ring) = &self.codec else {
            return Err(VaultError::NoEncryption);
        };
        let current = ring.current_id().to_owned();
        let mut done = 0;
        for tree in [VaultTree::Users, VaultTree::Secrets] {
            self.for_each_page(tree, |page| {
                let mut batch = OwnedBatch::new();
                for (key, stored) in page {
                    if sealed_key_id(stored).is_ok_and(|id| id == current) {
                        report.already_current += 1;
                        continue;
                    }
                    if done >= limit {
                        break;
                    }
                    let kind = kind_of(tree, key);
                    match self.codec.unwrap(&kind, key, stored) {
                        Ok(plain) => {
                            batch.insert(tree, key.clone(), self.codec.wrap(&kind, key, &plain));
                            done += 1;
                        }
                        Err(e) => {
                            tracing::error!(error = %e, tree = Tree::from(tree).name(), "record cannot be re-sealed; left in place");
                            report.unreadable.push(format!(
                                "{}/{}",
                                Tree::from(tree).name(),
                                String::from_utf8_lossy(key)
                            ));
                        }
                    }
                }
                if !batch.is_empty() {
                    self.trees.apply(batch)?;
                }
                Ok(done < limit)
            })?;
        }
        self.trees.flush()?;
        report.resealed += done;
        Ok(done)
    }

    /// Records still sealed under a key other than the current one.
    pub fn records_on_old_keys(&self) -> Result<usize, VaultError> {
        let Codec::Sealed(ring) = &self.codec else {
            return Ok(0);
        };
        let mut count = 0;
        for tree in [VaultTree::Users, VaultTree::Secrets] {
            self.for_each_page(tree, |page| {
                count += page
                    .iter()
                    .filter(|(_, v)| sealed_key_id(v).is_ok_and(|id| id != ring.current_id()))
                    .count();
                Ok(true)
            })?;
        }
        Ok(count)
    }

    /// Step 3: retires the old keys once no record uses them.
    pub fn finish_rotation(&mut self) -> Result<Vec<String>, VaultError> {
        if self.records_on_old_keys()? > 0 {
            return Ok(vec![]);
        }
        let path = self.rotatable_key_file()?;
        let Codec::Sealed(ring) = &mut self.codec else {
            return Err(VaultError::NoEncryption);
        };
        let mut next = ring.clone();
        let retired = next.retire_old_keys();
        if !retired.is_empty() {
            keyfile::save(&path, &next)?;
            *ring = next;
            self.publish();
        }
        Ok(retired)
    }

    /// A whole rotation (or the rest of an interrupted one), then a fresh
    /// snapshot when this store has one.
    ///
    /// With several instances sharing the key file, a rotation that starts
    /// here keeps the old keys: the others still seal with them until they
    /// read the key file again (SIGHUP, or within `KEY_RELOAD_SECONDS`), so
    /// retiring now could strand what they write meanwhile. Running it again
    /// once every instance took the new key re-seals what they wrote and
    /// retires the old keys.
    pub fn rotate(&mut self, now: UnixTime) -> Result<RotationReport, VaultError> {
        let starting = matches!(&self.codec, Codec::Sealed(ring) if ring.keys().len() == 1);
        let mut report = RotationReport {
            new_key_id: self.begin_rotation(now)?,
            ..Default::default()
        };
        self.reseal(usize::MAX, &mut report)?;
        if starting && self.keys_shared {
            return Ok(report);
        }
        report.retired_keys = self.finish_rotation()?;
        if self.snapshot.is_some() {
            self.write_snapshot()?;
        }
        Ok(report)
    }

    fn rotatable_key_file(&self) -> Result<PathBuf, VaultError> {
        match &self.key_source {
            Some(KeySource::File(p)) => Ok(p.clone()),
            Some(KeySource::Env) => Err(VaultError::Rotation(
                "the key comes from AUTH_ENCRYPTION_KEY; rotate by migrating to a key file".into(),
            )),
            None => Err(VaultError::Rotation(
                "this storage mode keeps no key to rotate".into(),
            )),
        }
    }
}

fn kind_of(tree: VaultTree, key: &[u8]) -> String {
    match tree {
        VaultTree::Secrets => {
            let name = String::from_utf8_lossy(key);
            secret_kind(name.split_once('/').map_or("", |(k, _)| k))
        }
        _ => USER.to_owned(),
    }
}
