//! The Janitor owns time: on an interval (and on demand) it asks each owner
//! to remove what has expired — clients (taking their tokens with them),
//! sign-ins, codes, tokens and grants, and users' upstream credentials no
//! grant needs any more — in bounded batches, so requests keep flowing
//! between batches. It records what it removed (metrics and audit), prunes
//! the rate limiters' keys, and in MEMORY_WITH_BACKUP has the Vault write
//! its snapshot.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{
    Actor, Addr, AsyncContext, Context, ContextFutureSpawner, Handler, Message, ResponseFuture,
    WrapFuture,
};

use super::handle::Reads;
use super::registry::{PurgeExpired, Registry};
use super::token_broker::{
    BrokerReader, PurgeTokens, ReferencedSubjects, RevokeClientGrants, TokenBroker,
};
use super::vault::{
    DeleteSecrets, PurgeUnreferencedUsers, Vault, WriteSnapshot, UPSTREAM_CLIENT_SECRET,
    UPSTREAM_PKCE,
};
use crate::audit::AuditEvent;
use crate::clock::Clock;
use crate::http::rate_limit::RateLimits;
use crate::metrics::METRICS;

/// Records removed per message, so one purge never holds an actor for long.
const BATCH: usize = 256;
/// Records looked at per message, for the same reason: a step of the walk
/// over a million-record tree takes a few milliseconds of the actor's time.
const SCAN: usize = 1024;
/// Upstream credentials untouched this long, and needed by no grant, go.
const USER_IDLE_SECONDS: i64 = 3600;

/// A sign-in's key (its state's hash) as the Vault names its verifier.
fn hex(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Clone)]
pub struct Janitor {
    registry: Addr<Registry>,
    broker: Addr<TokenBroker>,
    /// Reads for the referenced-users scan, off the broker's thread.
    broker_reader: Arc<BrokerReader>,
    vault: Addr<Vault>,
    limits: Arc<RateLimits>,
    clock: Clock,
    interval: Duration,
    /// MEMORY_WITH_BACKUP: how often the Vault writes its snapshot.
    snapshot_every: Option<Duration>,
    /// When the last run finished, and what it removed.
    last: Arc<std::sync::Mutex<Option<(i64, JanitorReport)>>>,
}

/// What one run removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct JanitorReport {
    pub clients: usize,
    pub grants: usize,
    pub tokens: usize,
    pub codes: usize,
    pub transactions: usize,
    pub users: usize,
    pub duration_ms: u64,
}

/// The actors whose records the janitor cleans.
pub struct Owners {
    pub registry: Addr<Registry>,
    pub broker: Addr<TokenBroker>,
    /// Reads for the referenced-users scan, off the broker's thread.
    pub broker_reader: Arc<BrokerReader>,
    pub vault: Addr<Vault>,
}

/// When the janitor last ran and what it removed.
#[derive(Debug, Message)]
#[rtype(result = "Option<(i64, JanitorReport)>")]
pub struct LastJanitorRun;

impl Handler<LastJanitorRun> for Janitor {
    type Result = Option<(i64, JanitorReport)>;

    fn handle(&mut self, _: LastJanitorRun, _: &mut Self::Context) -> Self::Result {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Runs the janitor now (admin API, tests); answers what it removed.
#[derive(Debug, Message)]
#[rtype(result = "JanitorReport")]
pub struct RunJanitor;

impl Janitor {
    pub fn new(
        owners: Owners,
        limits: Arc<RateLimits>,
        clock: Clock,
        interval: Duration,
        snapshot_every: Option<Duration>,
    ) -> Self {
        let Owners {
            registry,
            broker,
            broker_reader,
            vault,
        } = owners;
        Self {
            registry,
            broker,
            broker_reader,
            vault,
            limits,
            clock,
            interval,
            snapshot_every,
            last: Arc::default(),
        }
    }

    /// Deletes the Vault's secrets that belonged to removed records: custom
    /// upstream client secrets of expired clients, upstream PKCE verifiers
    /// of expired sign-ins.
    async fn delete_secrets(&self, kind: &str, ids: Vec<String>) {
        if ids.is_empty() {
            return;
        }
        let msg = DeleteSecrets {
            kind: kind.to_owned(),
            ids,
        };
        if !matches!(self.vault.send(msg).await, Ok(Ok(_))) {
            tracing::error!(kind, "janitor: deleting secrets of removed records failed");
        }
    }

    async fn run(self) -> JanitorReport {
        let started = Instant::now();
        let mut report = JanitorReport::default();
        // Clients first: an expired client takes its grants and tokens.
        let mut after = None;
        loop {
            let Ok(Ok(purged)) = self
                .registry
                .send(PurgeExpired {
                    now: self.clock.now(),
                    limit: BATCH,
                    after: after.take(),
                    scan: SCAN,
                })
                .await
            else {
                tracing::error!("janitor: purging expired clients failed");
                break;
            };
            for client_id in &purged.removed {
                AuditEvent::ClientExpired { client_id }.emit();
            }
            if !purged.removed.is_empty() {
                let client_ids = purged.removed.clone();
                if let Ok(Ok(grants)) = self.broker.send(RevokeClientGrants { client_ids }).await {
                    report.grants += grants;
                }
                self.delete_secrets(UPSTREAM_CLIENT_SECRET, purged.removed.clone())
                    .await;
            }
            report.clients += purged.removed.len();
            match purged.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let mut cursor = None;
        loop {
            let Ok(Ok(purged)) = self
                .broker
                .send(PurgeTokens {
                    now: self.clock.now(),
                    limit: BATCH,
                    scan: SCAN,
                    cursor: cursor.take(),
                })
                .await
            else {
                tracing::error!("janitor: purging expired tokens failed");
                break;
            };
            report.transactions += purged.transactions;
            let verifiers = purged
                .approved_transactions
                .iter()
                .map(|key| hex(key))
                .collect();
            self.delete_secrets(UPSTREAM_PKCE, verifiers).await;
            report.codes += purged.codes;
            report.tokens += purged.tokens;
            report.grants += purged.grants;
            match purged.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let reader = self.broker_reader.clone();
        let referenced =
            actix_web::rt::task::spawn_blocking(move || reader.read(ReferencedSubjects)).await;
        if let Ok(Ok(keep)) = referenced {
            let idle_before = self.clock.now() - USER_IDLE_SECONDS;
            if let Ok(Ok(n)) = self
                .vault
                .send(PurgeUnreferencedUsers {
                    keep,
                    idle_before,
                    limit: BATCH,
                })
                .await
            {
                report.users = n;
            }
        }
        self.limits.prune();
        let elapsed = started.elapsed();
        report.duration_ms = elapsed.as_millis() as u64;
        METRICS.janitor_runs.inc();
        METRICS.janitor_duration.observe(elapsed.as_secs_f64());
        for (kind, n) in [
            ("clients", report.clients),
            ("grants", report.grants),
            ("tokens", report.tokens),
            ("codes", report.codes),
            ("transactions", report.transactions),
            ("users", report.users),
        ] {
            METRICS
                .janitor_removed
                .with_label_values(&[kind])
                .inc_by(n as u64);
        }
        AuditEvent::JanitorRun {
            removed_clients: report.clients,
            removed_tokens: report.tokens,
            removed_grants: report.grants,
            removed_users: report.users,
            duration_ms: report.duration_ms,
        }
        .emit();
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((self.clock.now(), report.clone()));
        report
    }
}

impl Actor for Janitor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.interval, |this, ctx| {
            let job = this.clone();
            async move {
                job.run().await;
            }
            .into_actor(this)
            .spawn(ctx);
        });
        // Rate-limiter keys go back to fresh within a minute; forget them often.
        ctx.run_interval(Duration::from_secs(60), |this, _| this.limits.prune());
        if let Some(every) = self.snapshot_every {
            ctx.run_interval(every, |this, ctx| {
                let vault = this.vault.clone();
                async move {
                    match vault.send(WriteSnapshot).await {
                        Ok(Ok(records)) => tracing::debug!(records, "periodic snapshot written"),
                        Ok(Err(e)) => tracing::error!(error = %e, "writing the periodic snapshot failed"),
                        Err(e) => tracing::error!(error = %e, "vault unavailable for the periodic snapshot"),
                    }
                }
                .into_actor(this)
                .spawn(ctx);
            });
        }
    }
}

impl Handler<RunJanitor> for Janitor {
    type Result = ResponseFuture<JanitorReport>;

    fn handle(&mut self, _: RunJanitor, _: &mut Self::Context) -> Self::Result {
        Box::pin(self.clone().run())
    }
}
