//! The Janitor owns time: on an interval it asks the Registry to remove
//! expired clients, in bounded batches, and reports what was removed; in
//! MEMORY_WITH_BACKUP it also has the Vault write its snapshot.

use std::time::Duration;

use actix::{Actor, ActorFutureExt, Addr, AsyncContext, Context, ContextFutureSpawner, WrapFuture};

use super::registry::{PurgeExpired, Registry};
use super::vault::{Vault, WriteSnapshot};
use crate::audit::AuditEvent;
use crate::clock::Clock;

/// Clients removed per message, so one purge never holds the Registry for long.
const BATCH: usize = 1000;

pub struct Janitor {
    registry: Addr<Registry>,
    clock: Clock,
    interval: Duration,
    /// MEMORY_WITH_BACKUP: the Vault and how often it writes its snapshot.
    backups: Option<(Addr<Vault>, Duration)>,
}

impl Janitor {
    pub fn new(
        registry: Addr<Registry>,
        clock: Clock,
        interval: Duration,
        backups: Option<(Addr<Vault>, Duration)>,
    ) -> Self {
        Self {
            registry,
            clock,
            interval,
            backups,
        }
    }

    fn purge(&self, ctx: &mut Context<Self>) {
        let registry = self.registry.clone();
        let clock = self.clock.clone();
        async move {
            let started = std::time::Instant::now();
            let mut removed = 0usize;
            loop {
                match registry
                    .send(PurgeExpired {
                        now: clock.now(),
                        limit: BATCH,
                    })
                    .await
                {
                    Ok(Ok(report)) => {
                        for client_id in &report.removed {
                            AuditEvent::ClientExpired { client_id }.emit();
                        }
                        removed += report.removed.len();
                        if report.removed.len() < BATCH {
                            break;
                        }
                    }
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "janitor: purging expired clients failed");
                        break;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "janitor: registry unavailable");
                        break;
                    }
                }
            }
            AuditEvent::Cleanup {
                removed_clients: removed,
                duration_ms: started.elapsed().as_millis() as u64,
            }
            .emit();
        }
        .into_actor(self)
        .map(|_, _, _| ())
        .wait(ctx);
    }

    fn snapshot(&self, vault: Addr<Vault>, ctx: &mut Context<Self>) {
        async move {
            match vault.send(WriteSnapshot).await {
                Ok(Ok(records)) => tracing::debug!(records, "periodic snapshot written"),
                Ok(Err(e)) => tracing::error!(error = %e, "writing the periodic snapshot failed"),
                Err(e) => {
                    tracing::error!(error = %e, "vault unavailable for the periodic snapshot")
                }
            }
        }
        .into_actor(self)
        .spawn(ctx);
    }
}

impl Actor for Janitor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.interval, |this, ctx| this.purge(ctx));
        if let Some((vault, every)) = self.backups.clone() {
            ctx.run_interval(every, move |this, ctx| this.snapshot(vault.clone(), ctx));
        }
    }
}
