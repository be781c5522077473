//! Clients' connection timelines (tree `timelines`): a step is kept only
//! for a stored client, and goes with it (see `RegistryCore::remove` and
//! the purge).

use super::RegistryCore;
use crate::actors::registry::{ReadTimeline, RecordGatewayCall, RecordStep, RegistryError};
use crate::domain::timeline::Timeline;
use crate::storage::{codec, keys, OwnedBatch, RegistryTree, StoreError, Tree};

/// The format of a stored [`Timeline`].
const FORMAT: u8 = 1;

pub(in crate::actors::registry) fn encode(timeline: &Timeline) -> Result<Vec<u8>, StoreError> {
    codec::encode_format(FORMAT, timeline)
}

pub(in crate::actors::registry) fn decode(bytes: &[u8]) -> Result<Timeline, StoreError> {
    codec::decode_format(Tree::Timelines, FORMAT, bytes)
}

impl RegistryCore {
    /// The stored timeline of `client_id` (empty when none, or unreadable:
    /// a timeline is a diagnostic, never a reason to refuse).
    fn timeline(&self, client_id: &str) -> Result<Timeline, RegistryError> {
        Ok(self.timeline_as_stored(client_id)?.0)
    }

    /// The timeline and the bytes it was read from (`None`: none stored).
    fn timeline_as_stored(
        &self,
        client_id: &str,
    ) -> Result<(Timeline, Option<Vec<u8>>), RegistryError> {
        let key = keys::client(client_id);
        Ok(match self.trees.get(RegistryTree::Timelines, &key)? {
            None => (Timeline::default(), None),
            Some(bytes) => {
                let timeline = decode(&bytes).unwrap_or_else(|e| {
                    tracing::warn!(error = %e, client_id, "unreadable timeline started again");
                    Timeline::default()
                });
                (timeline, Some(bytes))
            }
        })
    }

    /// Changes a stored client's timeline with `change` (which answers
    /// whether it changed anything); nothing for a client not stored. The
    /// write swaps over the timeline as read, so steps recorded at the same
    /// time by other instances sharing the store are appended to, not
    /// overwritten (the change is made again over theirs).
    fn change_timeline(
        &mut self,
        client_id: &str,
        change: impl Fn(&mut Timeline) -> bool,
    ) -> Result<(), RegistryError> {
        self.retrying(|core| {
            if core.load(client_id)?.is_none() {
                return Ok(());
            }
            let (mut timeline, stored) = core.timeline_as_stored(client_id)?;
            if change(&mut timeline) {
                let mut batch = OwnedBatch::new();
                batch.swap(
                    RegistryTree::Timelines,
                    keys::client(client_id),
                    stored,
                    Some(encode(&timeline)?),
                );
                core.trees.apply(batch)?;
            }
            Ok(())
        })
    }

    pub fn record_step(&mut self, msg: RecordStep) -> Result<(), RegistryError> {
        self.change_timeline(&msg.client_id, |t| {
            t.record(msg.step.clone(), msg.keep_seconds);
            true
        })
    }

    pub fn record_gateway_call(&mut self, msg: RecordGatewayCall) -> Result<(), RegistryError> {
        self.change_timeline(&msg.client_id, |t| {
            t.gateway_call(msg.now, msg.keep_seconds)
        })
    }

    /// A client's timeline as of `now` (old steps left out); `None` when
    /// the client is not stored.
    pub fn read_timeline(&mut self, msg: ReadTimeline) -> Result<Option<Timeline>, RegistryError> {
        if self.load(&msg.client_id)?.is_none() {
            return Ok(None);
        }
        let mut timeline = self.timeline(&msg.client_id)?;
        timeline.prune(msg.now, msg.keep_seconds);
        Ok(Some(timeline))
    }
}
