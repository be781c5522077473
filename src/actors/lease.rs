//! A lease: which one of several instances sharing a store does the work
//! that one alone should (the janitor's purge). A record in tree `leases`
//! names the holder and until when it holds; an instance takes it when it
//! is free or expired, and the holder renews it, each time by a conditional
//! write over the record as read, so two instances can never both take it.
//! A holder that dies stops renewing: another takes over once the lease
//! expires, within one lease time. Plain reads and writes of one row: no
//! database-specific lock, so it works on any engine behind `Store`.
//! Leases are also taken per user around an upstream refresh, so one
//! instance alone refreshes a user's upstream token at a time.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::domain::secret::random_b64;
use crate::storage::{codec, LeaseTree, Owned, OwnedBatch, StoreError, Tree};

/// Who holds a lease, until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub holder: String,
    pub expires_at: UnixTime,
}

pub struct Lease {
    trees: Owned<LeaseTree>,
    name: String,
    /// Who takes it: this process ([`instance_id`]).
    holder: String,
    seconds: i64,
}

/// This process's name for itself among the instances sharing a store:
/// random, new at every start.
pub fn instance_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| format!("i_{}", random_b64(9)))
}

impl Lease {
    /// The lease `name` in `trees`, held by this process `seconds` at a time.
    pub fn new(trees: Owned<LeaseTree>, name: impl Into<String>, seconds: i64) -> Self {
        Self::held_by(trees, instance_id(), name, seconds)
    }

    /// The lease `name` as `holder` takes it (tests play several instances).
    pub fn held_by(
        trees: Owned<LeaseTree>,
        holder: &str,
        name: impl Into<String>,
        seconds: i64,
    ) -> Self {
        Self {
            trees,
            name: name.into(),
            holder: holder.to_owned(),
            seconds,
        }
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// How long it lasts unrenewed.
    pub fn seconds(&self) -> i64 {
        self.seconds
    }

    /// Takes the lease, or renews it when this instance holds it; answers
    /// whether this instance holds it until `now` plus the lease time.
    pub fn acquire(&self, now: UnixTime) -> Result<bool, StoreError> {
        let stored = self.trees.get(LeaseTree::Leases, self.name.as_bytes())?;
        if let Some(bytes) = &stored {
            // An unreadable record is taken over like an expired one.
            if let Ok(current) = codec::decode::<LeaseRecord>(Tree::Leases, bytes) {
                if current.holder != self.holder && current.expires_at > now {
                    return Ok(false);
                }
            }
        }
        let record = LeaseRecord {
            holder: self.holder.clone(),
            expires_at: now + self.seconds,
        };
        let mut batch = OwnedBatch::new();
        batch.swap(
            LeaseTree::Leases,
            self.name.as_bytes().to_vec(),
            stored,
            Some(codec::encode(&record)?),
        );
        match self.trees.apply(batch) {
            Ok(()) => Ok(true),
            // Another instance took or renewed it first.
            Err(StoreError::Conflict { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the lease up (a clean stop), so another instance need not
    /// wait for it to expire.
    pub fn release(&self) -> Result<(), StoreError> {
        let Some(bytes) = self.trees.get(LeaseTree::Leases, self.name.as_bytes())? else {
            return Ok(());
        };
        match codec::decode::<LeaseRecord>(Tree::Leases, &bytes) {
            Ok(current) if current.holder == self.holder => {
                let mut batch = OwnedBatch::new();
                batch.swap(
                    LeaseTree::Leases,
                    self.name.as_bytes().to_vec(),
                    Some(bytes),
                    None,
                );
                match self.trees.apply(batch) {
                    Ok(()) | Err(StoreError::Conflict { .. }) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use super::*;
    use crate::storage::testing::SlowReads;
    use crate::storage::SharedStore;

    fn lease(store: &SharedStore) -> Lease {
        Lease::held_by(Owned::new(store.clone()), &random_b64(9), "janitor", 30)
    }

    #[test]
    fn one_instance_holds_the_lease_until_it_expires_then_another_takes_it() {
        let store: SharedStore = Arc::new(SlowReads::default());
        let (a, b) = (lease(&store), lease(&store));
        assert!(a.acquire(100).unwrap());
        assert!(!b.acquire(101).unwrap(), "held by a");
        assert!(a.acquire(120).unwrap(), "a renews: now until 150");
        assert!(!b.acquire(149).unwrap());
        // a died (stopped renewing): b takes over once it expired.
        assert!(b.acquire(150).unwrap());
        assert!(!a.acquire(151).unwrap(), "a came back: b holds it now");
        b.release().unwrap();
        assert!(a.acquire(152).unwrap(), "released: free at once");
        b.release().unwrap();
        assert!(
            !b.acquire(153).unwrap(),
            "b's release did not free a's lease"
        );
    }

    #[test]
    fn of_instances_taking_a_free_lease_at_once_exactly_one_gets_it() {
        for round in 0..10 {
            let store: SharedStore = Arc::new(SlowReads::default());
            let start = Arc::new(Barrier::new(3));
            let held: usize = (0..3)
                .map(|_| {
                    let (store, start) = (store.clone(), start.clone());
                    std::thread::spawn(move || {
                        let l = lease(&store);
                        start.wait();
                        usize::from(l.acquire(100).unwrap())
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| t.join().unwrap())
                .sum();
            assert_eq!(held, 1, "round {round}");
        }
    }
}
