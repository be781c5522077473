//! How the HTTP side talks to an actor.
//!
//! [`Handle::send`] sends a message to the actor's thread and, when
//! durability is `immediate` and handling that message wrote to the store,
//! waits for the group commit ([`GroupCommit::barrier`]) before handing back
//! the answer: nothing is acknowledged to a client before it is on disk,
//! while the actor thread itself never waits for an fsync.
//!
//! Whether a message writes is derived, per message, from what its handler
//! did, never from a hand-kept list of message types: every message goes
//! to the actor wrapped in [`Tracked`], whose handler (generated next to
//! each message's own by [`track_writes!`](crate::track_writes)) counts the store writes
//! made on the actor's own thread while the message was handled
//! ([`GroupCommit::writes_on_this_thread`]). So a message that wrote always
//! waits for the barrier, whatever its type and even when it failed
//! half-way, and one that only read never does — a read is not refused
//! with 503 because another request's write could not be flushed.
//!
//! [`Handle::read`] answers a read-only message on the caller's own thread
//! from the actor's [`HasReader::Reader`], a view of the actor's trees that
//! can only read ([`ReadOnly`](crate::storage::ReadOnly)): reads need no
//! serialisation (the actor stays the only writer), and a thread hop costs
//! more than the read itself. A message answered this way has no handler
//! on the actor.

use std::sync::Arc;

use actix::dev::{MessageResponse, OneshotSender, ToEnvelope};
use actix::{Actor, Addr, Handler, MailboxError, Message};

use crate::storage::GroupCommit;

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

/// A message on its way to the actor through [`Handle::send`]; answered
/// with the message's own answer and whether handling it wrote.
pub struct Tracked<M>(pub M);

impl<M: Message> Message for Tracked<M> {
    type Result = Answered<M::Result>;
}

/// The answer to a [`Tracked`] message.
pub struct Answered<R> {
    pub answer: R,
    /// Whether the handler wrote to the store (so the answer must wait
    /// for the group commit).
    pub wrote: bool,
}

impl<R> Answered<R> {
    /// Runs `handle` on the actor's thread and notes whether it wrote.
    pub fn run(handle: impl FnOnce() -> R) -> Self {
        let before = GroupCommit::writes_on_this_thread();
        let answer = handle();
        Self {
            answer,
            wrote: GroupCommit::writes_on_this_thread() != before,
        }
    }
}

impl<A, M, R> MessageResponse<A, M> for Answered<R>
where
    A: Actor,
    M: Message<Result = Answered<R>>,
    R: 'static,
{
    fn handle(self, _: &mut A::Context, tx: Option<OneshotSender<Answered<R>>>) {
        if let Some(tx) = tx {
            // The caller may have gone (a client that hung up): nothing to do.
            let _ = tx.send(self);
        }
    }
}

/// Lets [`Handle::send`] reach these messages of `$actor`: answers
/// [`Tracked`]`<M>` by handling `M` and noting whether that wrote. A
/// message left out cannot be sent through a [`Handle`] (it does not
/// compile), so none is ever answered without the barrier it needs.
#[macro_export]
macro_rules! track_writes {
    ($actor:ty: $($msg:ty),+ $(,)?) => {$(
        impl actix::Handler<$crate::actors::handle::Tracked<$msg>> for $actor {
            type Result = $crate::actors::handle::Answered<<$msg as actix::Message>::Result>;

            fn handle(
                &mut self,
                msg: $crate::actors::handle::Tracked<$msg>,
                ctx: &mut Self::Context,
            ) -> Self::Result {
                $crate::actors::handle::Answered::run(|| {
                    <$actor as actix::Handler<$msg>>::handle(self, msg.0, ctx)
                })
            }
        }
    )+};
}

/// What the HTTP side holds of one actor: its address, its reader, and
/// the group commit that writing answers wait for.
pub struct Handle<A: Actor + HasReader> {
    addr: Addr<A>,
    commit: Option<Arc<GroupCommit>>,
    reader: Arc<A::Reader>,
    /// Reads go over the network (a shared database): answered on the
    /// blocking pool, so a slow round trip never stalls an HTTP worker's
    /// event loop.
    remote: bool,
}

impl<A: Actor + HasReader> Clone for Handle<A> {
    fn clone(&self) -> Self {
        Self {
            addr: self.addr.clone(),
            commit: self.commit.clone(),
            reader: self.reader.clone(),
            remote: self.remote,
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
            remote: false,
        }
    }

    /// Reads answered on the blocking pool (a store across the network).
    pub fn with_remote_reads(mut self, remote: bool) -> Self {
        self.remote = remote;
        self
    }

    /// Answers a read-only message without the actor's thread: only
    /// messages the actor's reader answers (and a reader cannot write).
    /// On the caller's own thread when the store is local (a read takes
    /// microseconds, less than any hop); on the blocking pool when it is
    /// remote.
    pub async fn read<M>(&self, msg: M) -> Result<M::Result, CallError>
    where
        M: Message + Send + 'static,
        M::Result: Send + 'static,
        A::Reader: Reads<M>,
    {
        if !self.remote {
            return Ok(self.reader.read(msg));
        }
        let reader = self.reader.clone();
        actix_web::rt::task::spawn_blocking(move || reader.read(msg))
            .await
            .map_err(|_| CallError::Mailbox(MailboxError::Closed))
    }

    pub fn addr(&self) -> &Addr<A> {
        &self.addr
    }

    /// Sends `msg` to the actor; once answered, and if handling it wrote,
    /// waits until that write is durable (durability `immediate`).
    pub async fn send<M>(&self, msg: M) -> Result<M::Result, CallError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<Tracked<M>>,
        A::Context: ToEnvelope<A, Tracked<M>>,
    {
        let Answered { answer, wrote } = self.addr.send(Tracked(msg)).await?;
        if let (Some(commit), true) = (&self.commit, wrote) {
            commit.barrier().await.map_err(|_| CallError::NotDurable)?;
        }
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{MemoryStore, Store, Tree};

    #[test]
    fn a_message_that_writes_is_noted_and_one_that_only_reads_is_not() {
        let commit = GroupCommit::new(Arc::new(MemoryStore::new()));
        let write = Answered::run(|| commit.insert(Tree::Clients, b"k", vec![1]));
        assert!(write.wrote);
        let read = Answered::run(|| commit.get(Tree::Clients, b"k"));
        assert!(!read.wrote);
        assert_eq!(read.answer.unwrap(), Some(vec![1]));
    }

    struct Probe;
    impl Actor for Probe {
        type Context = actix::Context<Self>;
    }
    struct ThreadReader;
    impl HasReader for Probe {
        type Reader = ThreadReader;
    }
    #[derive(Message)]
    #[rtype(result = "std::thread::ThreadId")]
    struct WhichThread;
    impl Reads<WhichThread> for ThreadReader {
        fn read(&self, _: WhichThread) -> std::thread::ThreadId {
            std::thread::current().id()
        }
    }

    #[actix_web::test]
    async fn reads_of_a_remote_store_leave_the_event_loop_and_local_ones_stay() {
        let addr = Probe.start();
        let here = std::thread::current().id();
        let local = Handle::<Probe>::new(addr.clone(), None, Arc::new(ThreadReader));
        assert_eq!(local.read(WhichThread).await.unwrap(), here);
        let remote = local.clone().with_remote_reads(true);
        assert_ne!(remote.read(WhichThread).await.unwrap(), here);
        assert!(remote.clone().remote, "the setting survives a clone");
    }

    #[test]
    fn another_threads_write_meanwhile_is_not_this_messages() {
        let commit = GroupCommit::new(Arc::new(MemoryStore::new()));
        let other = commit.clone();
        let read = Answered::run(|| {
            std::thread::spawn(move || other.insert(Tree::Clients, b"k", vec![1]))
                .join()
                .unwrap()
                .unwrap();
            commit.get(Tree::Clients, b"k")
        });
        assert!(!read.wrote, "a read never waits for others' writes");
    }
}
