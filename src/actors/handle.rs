//! How the HTTP side talks to an actor: [`Handle::send`] sends the message
//! and, when the message writes and durability is `immediate`, waits for the
//! group commit ([`GroupCommit::barrier`]) before handing back the answer.
//! So nothing is acknowledged to a client before it is on disk, while the
//! actor thread itself never waits for an fsync.

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

pub struct Handle<A: Actor> {
    addr: Addr<A>,
    commit: Option<Arc<GroupCommit>>,
}

impl<A: Actor> Clone for Handle<A> {
    fn clone(&self) -> Self {
        Self {
            addr: self.addr.clone(),
            commit: self.commit.clone(),
        }
    }
}

impl<A: Actor> Handle<A> {
    /// `commit` is `None` when durability is `periodic`.
    pub fn new(addr: Addr<A>, commit: Option<Arc<GroupCommit>>) -> Self {
        Self { addr, commit }
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
