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
use super::registry::{InspectClient, PurgeExpired, Registry, RegistryReader};
use super::token_broker::{
    BrokerReader, PurgeTokens, ReferencedSubjects, RevokeClientGrants, TokenBroker,
};
use super::vault::{
    DeleteSecrets, PurgeUnreferencedUsers, SecretIds, Vault, WriteSnapshot, UPSTREAM_CLIENT_SECRET,
    UPSTREAM_PKCE,
};
use crate::audit::AuditEvent;
use crate::clock::Clock;
use crate::domain::ClientId;
use crate::metrics::METRICS;
use crate::rate_limit::RateLimits;

use super::lease::Lease;

/// Records removed per message, so one purge never holds an actor for long.
const BATCH: usize = 256;
/// Records looked at per message, for the same reason: a step of the walk
/// over a million-record tree takes a few milliseconds of the actor's time.
const SCAN: usize = 1024;
/// Upstream credentials untouched this long, and needed by no grant, go.
const USER_IDLE_SECONDS: i64 = 3600;

/// A verifier's id (hex of its sign-in's state hash) as the transaction key.
fn unhex(id: &str) -> Option<Vec<u8>> {
    if !id.len().is_multiple_of(2) {
        return None;
    }
    (0..id.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(id.get(i..i + 2)?, 16).ok())
        .collect()
}

#[derive(Clone)]
pub struct Janitor {
    registry: Addr<Registry>,
    /// Whether a client still exists, asked off the Registry's thread.
    registry_reader: Arc<RegistryReader>,
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
    /// Several instances on one database: the lease that lets one alone
    /// run the scheduled purge (`None`: this instance is the only one).
    lease: Option<Arc<Lease>>,
    /// Whether this instance held the lease at its last check.
    leading: Arc<std::sync::atomic::AtomicBool>,
    /// One run at a time in this process: a run asked for (operators,
    /// tests) while the scheduled one goes on starts after it.
    running: Arc<tokio::sync::Mutex<()>>,
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
    /// Whether a client still exists, asked off the Registry's thread.
    pub registry_reader: Arc<RegistryReader>,
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
            registry_reader,
            broker,
            broker_reader,
            vault,
        } = owners;
        Self {
            registry,
            registry_reader,
            broker,
            broker_reader,
            vault,
            limits,
            clock,
            interval,
            snapshot_every,
            last: Arc::default(),
            lease: None,
            leading: Arc::default(),
            running: Arc::default(),
        }
    }

    /// Runs the scheduled purge only while holding `lease` (several
    /// instances on one database).
    pub fn with_lease(mut self, lease: Option<Lease>) -> Self {
        self.lease = lease.map(Arc::new);
        self
    }

    /// Whether this instance should run the scheduled purge now: always
    /// when alone; with a lease, when it holds (takes or renews) it.
    async fn leads(&self) -> bool {
        let Some(lease) = self.lease.clone() else {
            return true;
        };
        let now = self.clock.now();
        let held = actix_web::rt::task::spawn_blocking(move || lease.acquire(now)).await;
        let leads = match held {
            Ok(Ok(held)) => held,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "janitor: the lease could not be read; not purging this time");
                false
            }
            Err(_) => false,
        };
        METRICS.janitor_leader.set(i64::from(leads));
        let was = self
            .leading
            .swap(leads, std::sync::atomic::Ordering::AcqRel);
        if leads != was {
            tracing::info!(
                instance = super::lease::instance_id(),
                leads,
                "janitor: {} the lease",
                if leads { "took" } else { "lost" }
            );
        }
        leads
    }

    /// Deletes Vault secrets of `kind` whose owners were removed.
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

    /// Deletes secrets whose owner is gone: upstream PKCE verifiers of
    /// sign-ins no longer pending (expired and purged just before, or left
    /// by releases that never deleted them), custom upstream secrets of
    /// clients no longer stored (or left by a crash between the two writes
    /// of a removal). Owners are written before their secrets, so a live
    /// owner's secret is never taken.
    async fn sweep_orphaned_secrets(&self) {
        for kind in [UPSTREAM_PKCE, UPSTREAM_CLIENT_SECRET] {
            let mut after = None;
            loop {
                let msg = SecretIds {
                    kind: kind.to_owned(),
                    after: after.take(),
                    limit: BATCH,
                };
                let Ok(Ok(ids)) = self.vault.send(msg).await else {
                    tracing::error!(kind, "janitor: listing sealed secrets failed");
                    break;
                };
                let full = ids.len() == BATCH;
                after = ids.last().cloned();
                let mut orphans = Vec::new();
                for id in ids {
                    if !self.owner_exists(kind, &id).await {
                        orphans.push(id);
                    }
                }
                self.delete_secrets(kind, orphans).await;
                if !full {
                    break;
                }
            }
        }
    }

    /// Whether the record a secret belongs to is still stored (when in
    /// doubt — a storage error — it is).
    async fn owner_exists(&self, kind: &str, id: &str) -> bool {
        if kind == UPSTREAM_CLIENT_SECRET {
            // The secret's id is the client id it was sealed under.
            let msg = InspectClient {
                client_id: ClientId::stored(id),
            };
            return !matches!(self.registry_reader.read(msg), Ok(None));
        }
        let Some(key) = unhex(id) else {
            return false;
        };
        self.broker_reader.has_transaction(&key).unwrap_or(true)
    }

    async fn run(self) -> JanitorReport {
        let running = self.running.clone();
        let _one_at_a_time = running.lock().await;
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
                self.delete_secrets(
                    UPSTREAM_CLIENT_SECRET,
                    purged.removed.iter().map(ClientId::to_string).collect(),
                )
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
            report.codes += purged.codes;
            report.tokens += purged.tokens;
            report.grants += purged.grants;
            match purged.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        self.sweep_orphaned_secrets().await;
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
        METRICS.janitor_leader.set(i64::from(self.lease.is_none()));
        if let Some(lease) = &self.lease {
            // The holder renews every third of the lease; another instance
            // checks as often, and purges at once when it takes over.
            let every = Duration::from_secs((lease.seconds() / 3).max(1) as u64);
            ctx.run_interval(every, |this, ctx| {
                let job = this.clone();
                async move {
                    let was = job.leading.load(std::sync::atomic::Ordering::Acquire);
                    if job.leads().await && !was {
                        job.run().await;
                    }
                }
                .into_actor(this)
                .spawn(ctx);
            });
        }
        ctx.run_interval(self.interval, |this, ctx| {
            let job = this.clone();
            async move {
                if job.leads().await {
                    job.run().await;
                }
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

impl Drop for Janitor {
    fn drop(&mut self) {
        // The actor's own copy (not a run's clone) going away at a clean
        // stop: hand the lease on at once.
        if let Some(lease) = self.lease.as_ref().filter(|l| Arc::strong_count(l) == 1) {
            let _ = lease.release();
        }
    }
}

impl Handler<RunJanitor> for Janitor {
    type Result = ResponseFuture<JanitorReport>;

    fn handle(&mut self, _: RunJanitor, _: &mut Self::Context) -> Self::Result {
        Box::pin(self.clone().run())
    }
}
