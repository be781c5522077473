//! How the HTTP side talks to an actor: [`Handle::send`] sends the message
//! and, when durability is `immediate` and the store was written while the
//! actor answered, waits for the group commit ([`GroupCommit::barrier`])
//! before handing back the answer. Whether a message writes is not declared
//! anywhere: the store's own write counter is read before the message is
//! sent and after its answer arrives, so a message that wrote always waits
//! (a read that raced another request's write waits too, which is only
//! conservative). Nothing is acknowledged to a client before it is on disk,
//! while the actor thread itself never waits for an fsync.
//!
//! [`Handle::read`] answers a read-only message on the caller's own thread
//! from the actor's [`HasReader::Reader`], a view of the same store that can
//! only read ([`ReadStore`]): reads need no serialisation (the actor stays the
//! only writer), and a thread hop costs more than the read itself.

use std::sync::Arc;

use actix::dev::ToEnvelope;
use actix::{Actor, Addr, Handler, MailboxError, Message};

use crate::storage::GroupCommit;
pub use crate::storage::ReadStore;

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("actor unavailable: {0}")]
    Mailbox(#[from] MailboxError),
    #[error("the change could not be made durable")]
    NotDurable,
}

/// An actor whose read-only messages can be answered off its thread.
pub trait HasReader {
    type Reader: Send + Sync + 'static;
}

/// A reader's answer to one read-only message.
pub trait Reads<M: Message> {
    fn read(&self, msg: M) -> M::Result;
}

pub struct Handle<A: Actor + HasReader> {
    addr: Addr<A>,
    commit: Option<Arc<GroupCommit>>,
    reader: Arc<A::Reader>,
}

impl<A: Actor + HasReader> Clone for Handle<A> {
    fn clone(&self) -> Self {
        Self {
            addr: self.addr.clone(),
            commit: self.commit.clone(),
            reader: self.reader.clone(),
        }
    }
}

impl<A: Actor + HasReader> Handle<A> {
    /// `commit` is `None` when durability is `periodic`.
    pub fn new(addr: Addr<A>, commit: Option<Arc<GroupCommit>>, reader: Arc<A::Reader>) -> Self {
        Self {
            addr,
            commit,
            reader,
        }
    }

    /// Answers a read-only message here, without the actor's thread: only
    /// messages the actor's reader answers (and a reader cannot write).
    pub async fn read<M>(&self, msg: M) -> Result<M::Result, CallError>
    where
        M: Message,
        A::Reader: Reads<M>,
    {
        Ok(self.reader.read(msg))
    }

    pub fn addr(&self) -> &Addr<A> {
        &self.addr
    }

    /// Sends `msg` to the actor; once answered, waits until whatever the
    /// store took in meanwhile is durable (durability `immediate`).
    pub async fn send<M>(&self, msg: M) -> Result<M::Result, CallError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        let before = self.commit.as_ref().map(|c| c.writes());
        let answer = self.addr.send(msg).await?;
        if let (Some(commit), Some(before)) = (&self.commit, before) {
            if commit.writes() != before {
                commit.barrier().await.map_err(|_| CallError::NotDurable)?;
            }
        }
        Ok(answer)
    }
}
