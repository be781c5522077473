//! The Registry owns proxy clients: RFC 7591 registration, RFC 7592 read,
//! update and delete, credential checks, the client cap and expiry.
//!
//! The logic lives in [`RegistryCore`], a plain struct over the Registry's
//! own tree ([`RegistryTree`](crate::storage::RegistryTree)); [`Registry`]
//! is the actor that runs it on its own thread (`SyncArbiter`), so blocking
//! disk I/O never stalls an HTTP worker, and so every write to the
//! `clients` tree is made by one writer, in order. Lookups and credential
//! checks ([`GetClient`], [`InspectClient`], [`ReadClient`],
//! [`AuthenticateClient`]) are answered by [`RegistryReader`] on the
//! caller's thread and have no handler here.

mod core;
pub mod messages;
mod reader;
mod record;

use actix::{Actor, Handler, SyncContext};

pub use self::core::{FloodGuard, RegistryCore};
pub use messages::*;
pub use reader::RegistryReader;
pub use record::{ClientRecord, ClientView, DocumentState, ExpiryPolicy};

use crate::domain::MetadataError;
use crate::storage::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Unknown, expired, or wrong registration access token: RFC 7592 says
    /// all of these look the same to the caller.
    #[error("the registration access token is invalid or the client does not exist")]
    InvalidToken,
    /// Unknown or expired client, or wrong secret or method.
    #[error("client authentication failed")]
    InvalidClient,
    #[error("{0}")]
    Metadata(#[from] MetadataError),
    #[error("the server already holds its maximum of {0} clients; try again later")]
    Full(usize),
    /// One origin holds its cap of registrations that never signed in.
    #[error("this address already holds {0} registrations that never completed a sign-in; use one of them, or try again later")]
    TooManyUnused(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The actor: runs [`RegistryCore`] on its own thread.
pub struct Registry {
    core: RegistryCore,
}

impl Registry {
    pub fn new(core: RegistryCore) -> Self {
        Self { core }
    }
}

impl crate::actors::handle::HasReader for Registry {
    type Reader = RegistryReader;
}

impl Actor for Registry {
    type Context = SyncContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.address().do_send(CountStep);
    }
}

/// One step of the start-up count of clients; sends itself the next.
#[derive(Debug, actix::Message)]
#[rtype(result = "()")]
struct CountStep;

impl Handler<CountStep> for Registry {
    type Result = ();

    fn handle(&mut self, _: CountStep, ctx: &mut Self::Context) {
        match self.core.count_step() {
            Ok(true) => ctx.address().do_send(CountStep),
            Ok(false) => {}
            Err(e) => {
                tracing::error!(error = %e, "counting the clients failed; the count finishes at the next registration")
            }
        }
    }
}

macro_rules! delegate {
    ($msg:ty, $method:ident) => {
        impl Handler<$msg> for Registry {
            type Result = <$msg as actix::Message>::Result;

            fn handle(&mut self, msg: $msg, _: &mut Self::Context) -> Self::Result {
                self.core.$method(msg)
            }
        }

        $crate::track_writes!(Registry: $msg);
    };
}

delegate!(RegisterClient, register);
delegate!(UpdateClient, update);
delegate!(AdmitDocumentClient, admit_document);
delegate!(DeleteClient, delete);
delegate!(RecordClientUse, record_use);
delegate!(CountClients, count);
delegate!(PurgeExpired, purge_expired);
delegate!(PingStore, ping);
delegate!(ListClients, list);
delegate!(SetClientDisabled, set_disabled);
delegate!(RemoveClient, remove_client);
delegate!(RecordStep, record_step);
delegate!(RecordGatewayCall, record_gateway_call);
delegate!(ReadTimeline, read_timeline);

#[cfg(test)]
mod tests;
