//! How the HTTP side talks to an actor: [`Handle::send`] sends the message
//! and, when the message writes and durability is `immediate`, waits for the
//! group commit ([`GroupCommit::barrier`]) before handing back the answer.
//! So nothing is acknowledged to a client before it is on disk, while the
//! actor thread itself never waits for an fsync.
//!
//! [`Handle::read`] answers a read-only message on the caller's own thread
//! from the actor's [`HasReader::Reader`], a shared view of the same store:
//! reads need no serialisation (the actor stays the only writer), and a
//! thread hop costs more than the read itself.

use std::sync::Arc;

use actix::dev::ToEnvelope;
use actix::{Actor, Addr, Handler, MailboxError, Message};

use crate::storage::GroupCommit;

/// Whether a message can change stored state that a client is then told
/// about (and so must be durable before the answer goes out).
pub trait Durable {
    const WRITES: bool;
}

/// Declares which messages write (`writes: ...`) and which only read.
#[macro_export]
macro_rules! durable_messages {
    (writes: [$($w:ty),* $(,)?], reads: [$($r:ty),* $(,)?]) => {
        $(impl $crate::actors::handle::Durable for $w { const WRITES: bool = true; })*
        $(impl $crate::actors::handle::Durable for $r { const WRITES: bool = false; })*
    };
}

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

    /// Answers a read-only message here, without the actor's thread.
    pub async fn read<M>(&self, msg: M) -> Result<M::Result, CallError>
    where
        M: Message + Durable,
        A::Reader: Reads<M>,
    {
        debug_assert!(!M::WRITES);
        Ok(self.reader.read(msg))
    }

    pub fn addr(&self) -> &Addr<A> {
        &self.addr
    }

    pub async fn send<M>(&self, msg: M) -> Result<M::Result, CallError>
    where
        M: Message + Durable + Send + 'static,
        M::Result: Send,
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        let answer = self.addr.send(msg).await?;
        if M::WRITES {
            if let Some(commit) = &self.commit {
                commit.barrier().await.map_err(|_| CallError::NotDurable)?;
            }
        }
        Ok(answer)
    }
}
