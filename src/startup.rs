//! Building and running the application.

use std::fs::File;
use std::net::TcpListener;
use std::sync::Arc;

use actix::{Actor, Addr, SyncArbiter};
use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::{from_fn, Condition, DefaultHeaders};
use actix_web::{web, App, HttpServer};
use tracing_actix_web::TracingLogger;

use crate::actors::handle::Handle;
use crate::actors::janitor::{Janitor, Owners};
use crate::actors::lease::Lease;
use crate::actors::registry::{ExpiryPolicy, FloodGuard, Registry, RegistryCore, RegistryReader};
use crate::actors::token_broker::{
    successor, BrokerReader, SuccessorKey, TokenBroker, TokenBrokerCore, TokenPolicy,
};
use crate::actors::vault::{
    PublishedCodec, ReloadKeys, Vault, VaultCore, VaultReader, WriteSnapshot, KEY_RELOAD_SECONDS,
};
use crate::clock::Clock;
use crate::configuration::{Config, StorageMode, UpstreamProvider};
use crate::http::admin::AdminToken;
use crate::http::connections::{self, ConnectionLimits};
use crate::http::{self, middleware, AppState};
use crate::persistence::{self, Opened};
use crate::rate_limit::RateLimits;
use crate::service::access::{self, AccessLists};
use crate::service::clients::document::document_cache;
use crate::service::timeline::GatewaySampler;
use crate::service::Services;
use crate::storage::{GroupCommit, Owned, SharedStore, Sizes};
use crate::upstream::dev::{self, DevProvider};
use crate::upstream::Upstream;

pub struct Application {
    port: u16,
    server: Server,
    store: SharedStore,
    vault: Addr<Vault>,
    janitor: Addr<Janitor>,
    /// The admin API's own listener (when `admin.listen` is set) and the
    /// HTTP redirect listener (when `server.http_redirect_port` is).
    side_servers: Vec<Server>,
    config: Arc<Config>,
    _lock: Option<File>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Persistence(#[from] persistence::PersistenceError),
    #[error("admin API: {0}")]
    Admin(String),
    #[error("upstream provider: {0}")]
    Upstream(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("HTTPS: {0}")]
    Tls(#[from] crate::tls::CertError),
}

impl Application {
    /// Opens storage, starts the actors and binds the listener. Call inside
    /// an actix system. Port 0 binds a free port (tests).
    pub async fn build(mut config: Config, clock: Clock) -> Result<Self, StartupError> {
        let addr = format!("{}:{}", config.server.host, config.server.port);
        let listener = TcpListener::bind(&addr).map_err(|source| StartupError::Bind {
            addr: addr.clone(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind { addr, source })?
            .port();
        if !config.server.base_url_configured {
            // Port 0 was resolved by the bind: advertise the real one.
            let _ = config.server.base_url.set_port(Some(port));
        }

        let lock = persistence::lock_dir(&config)?;
        let opened = persistence::open_mode(&config, config.storage.mode, false, clock.now())?;
        persistence::warn_about_other_modes(&config, &opened.store);
        let config = Arc::new(config);
        // Group commit: actors write without flushing; answers that
        // acknowledge a write wait for a shared flush (durability immediate).
        let commit =
            GroupCommit::observed(opened.store.clone(), Box::new(crate::metrics::record_flush));
        let mut opened = opened;
        opened.store = commit.clone();
        let store = opened.store.clone();
        let commit = config.storage.flush_every_write.then_some(commit);
        let snapshots = opened.snapshot.is_some();
        // Everything that can fail is resolved before the first actor
        // starts: an actor system torn down half-started ends in a panic
        // instead of the one-line error an operator needs.
        crate::audit::set_user_field(&config.audit.user_field);
        let certs = crate::tls::Certificates::open(&config, clock.now())?;
        let redirect_listener = config
            .server
            .http_redirect_port
            .map(|port| bind(&format!("{}:{port}", config.server.host)))
            .transpose()?;
        let admin = AdminToken::resolve(&config).map_err(StartupError::Admin)?;
        let dev = (config.upstream.provider == UpstreamProvider::Dev).then(|| {
            let secret = opened
                .codec
                .keyring()
                .map(|ring| ring.derive_key(dev::SECRET_PURPOSE));
            DevProvider::new(Owned::new(store.clone()), clock.clone(), secret)
        });
        let upstream = Upstream::build(&config, dev.as_ref().map(|d| d.credentials()))
            .await
            .map_err(StartupError::Upstream)?;
        let gateway_http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.gateway.connect_timeout)
            .build()
            .map_err(|e| StartupError::Upstream(e.to_string()))?;
        let admin_listener = bind_admin(&config, &admin)?;
        // Each actor is handed its own trees only; the HTTP side gets their
        // readers, which can only read.
        let remote = store.is_remote();
        let (registry, registry_reader) = start_registry(&config, &store);
        let (vault, vault_reader) = start_vault(&opened, remote);
        let successor = match opened.codec.keyring() {
            Some(ring) => SuccessorKey::new(ring.derive_key(successor::PURPOSE)),
            None => SuccessorKey::random(),
        };
        let (broker, broker_reader) = start_broker(&config, &store, successor);
        let limits = Arc::new(RateLimits::new(&config.rate_limit, clock.clone()));
        let server_settings = &config.server;
        let janitor = Janitor::new(
            Owners {
                registry: registry.clone(),
                registry_reader: registry_reader.clone(),
                broker: broker.clone(),
                broker_reader: broker_reader.clone(),
                vault: vault.clone(),
            },
            limits.clone(),
            clock.clone(),
            config.clients.cleanup_interval,
            snapshots.then_some(config.storage.backup_interval),
        )
        .with_lease(remote.then(|| {
            Lease::new(
                Owned::new(store.clone()),
                "janitor",
                config.storage.lease.as_secs() as i64,
            )
        }))
        .start();
        let services = Services {
            config: config.clone(),
            registry: Handle::new(registry, commit.clone(), registry_reader)
                .with_remote_reads(remote),
            vault: Handle::new(vault.clone(), commit.clone(), vault_reader)
                .with_remote_reads(remote),
            broker: Handle::new(broker, commit, broker_reader).with_remote_reads(remote),
            upstream: Arc::new(upstream),
            flights: Arc::default(),
            leases: remote.then(|| Owned::new(store.clone())),
            limits,
            cimd: Arc::new(document_cache(&config, clock.clone())),
            access: Arc::new(AccessLists::new(&config.access, clock.now())),
            browser_key: Arc::default(),
            timeline: Arc::new(GatewaySampler::new(
                config.admin.timeline_gateway_interval_seconds,
            )),
            clock,
        };
        if services.access.has_files() {
            access::reload_on_hangup(services.access.clone(), services.clock.clone());
        }
        reload_keys(
            vault.clone(),
            config.storage.allow_insecure_key_permissions,
            remote,
        );
        let state = AppState {
            services,
            dev,
            admin,
            janitor: janitor.clone(),
            store: Sizes::new(store.clone()),
            gateway_http,
            certificate: certs.public.clone(),
        };
        let mut side_servers = Vec::new();
        if let Some(listener) = admin_listener {
            side_servers.push(start_admin_listener(listener, &state, certs.admin.clone())?);
        }
        if let Some(listener) = redirect_listener {
            let challenges = certs.challenges.clone();
            let server = http::redirect::start(listener, &config.server.base_url, challenges)
                .map_err(|source| StartupError::Bind {
                    addr: "the HTTP redirect port".into(),
                    source,
                })?;
            side_servers.push(server);
        }
        if let (Some(acme), Some(cert), Some(challenges)) = (
            config.server.acme.clone(),
            certs.public.clone(),
            certs.challenges.clone(),
        ) {
            let renewal = crate::service::certificates::Renewal {
                services: state.services.clone(),
                config: acme,
                cert,
                challenges,
            };
            renewal.start().await;
        }
        // Connection hygiene: body-read deadline, connections per address.
        let connections = ConnectionLimits::new(&config);
        let hsts = config.server.hsts.clone();
        let branding = web::Data::new(crate::pages::Branding::new(&config.pages));
        let mut server = HttpServer::new(move || {
            let state = state.clone();
            App::new()
                .app_data(branding.clone())
                .wrap(from_fn(crate::pages::branded))
                .wrap(Condition::new(
                    hsts.is_some(),
                    DefaultHeaders::new().add((
                        "Strict-Transport-Security",
                        hsts.clone().unwrap_or_default(),
                    )),
                ))
                .wrap(from_fn(connections::guard))
                .wrap(from_fn(middleware::limit_headers))
                .wrap(from_fn(middleware::observe))
                .wrap(TracingLogger::<middleware::RequestSpan>::new())
                .configure(move |cfg: &mut web::ServiceConfig| http::configure(cfg, state))
        })
        .on_connect(move |io, ext| connections.on_connect(io, ext))
        .shutdown_timeout(server_settings.shutdown_timeout.as_secs())
        .client_request_timeout(server_settings.head_read_timeout);
        if server_settings.workers > 0 {
            server = server.workers(server_settings.workers);
        }
        certs.keep_fresh();
        let server = match certs.public.clone() {
            Some(cert) => server.listen_rustls_0_23(listener, crate::tls::server_config(cert)),
            None => server.listen(listener),
        }
        .map_err(|source| StartupError::Bind {
            addr: format!("port {port}"),
            source,
        })?
        .run();
        tracing::info!(
            listening = %config.listen_url(port), port, base_url = %config.server.base_url,
            storage_mode = config.storage.mode.as_str(),
            upstream_provider = %config.upstream.provider,
            "{}", config.ready_message(port)
        );
        warn_about(&config);
        Ok(Self {
            port,
            server,
            store,
            vault,
            janitor,
            side_servers,
            config,
            _lock: lock,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The configuration the app runs with (base URL resolved).
    pub fn config(&self) -> Arc<Config> {
        self.config.clone()
    }

    /// The Janitor, to run a purge on demand.
    pub fn janitor(&self) -> Addr<Janitor> {
        self.janitor.clone()
    }

    /// A handle that stops the server gracefully.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped (SIGINT/SIGTERM or [`ServerHandle::stop`]): stops
    /// accepting, lets requests in flight finish, writes the snapshot (in
    /// MEMORY_WITH_BACKUP), then flushes the store.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let (public, side) = futures_util::future::join(
            self.server,
            futures_util::future::join_all(self.side_servers),
        )
        .await;
        let result = side.into_iter().fold(public, |all, one| all.and(one));
        if self.config.storage.mode == StorageMode::MemoryWithBackup {
            match self.vault.send(WriteSnapshot).await {
                Ok(Ok(records)) => {
                    tracing::info!(records, "encrypted snapshot written at shutdown")
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "writing the snapshot at shutdown failed")
                }
                Err(e) => tracing::error!(error = %e, "vault unavailable at shutdown"),
            }
        }
        match self.store.flush() {
            Ok(()) => tracing::info!("storage flushed; stopped"),
            Err(e) => tracing::error!(error = %e, "flushing storage at shutdown failed"),
        }
        result
    }
}

fn warn_about(config: &Config) {
    match config.storage.mode {
        StorageMode::FilePlaintext => {
            tracing::warn!("CREDENTIAL_STORAGE_MODE=FILE_PLAINTEXT is for development only: users' tokens are stored unencrypted")
        }
        StorageMode::MemoryOnly => {
            tracing::warn!("CREDENTIAL_STORAGE_MODE=MEMORY_ONLY: every registration and credential is lost on restart")
        }
        StorageMode::MemoryWithBackup | StorageMode::FileEncrypted => {}
    }
    let server = &config.server;
    if !server.base_url_configured && ["0.0.0.0", "::"].contains(&server.host.as_str()) {
        tracing::warn!(
            "listening on all interfaces without BASE_URL: advertised URLs name {}, set BASE_URL to the public URL",
            config.server.base_url
        );
    }
    if config.tokens.passthrough {
        tracing::warn!("TOKEN_MODE=passthrough: the token endpoint hands the upstream's own tokens to clients (compatibility switch)");
    }
    if config.oauth.allow_direct_upstream_credentials {
        tracing::warn!(
            "direct upstream credentials are accepted at the token endpoint (compatibility switch)"
        );
    }
    if config.upstream.provider == UpstreamProvider::Dev {
        tracing::warn!(
            "UPSTREAM_PROVIDER=dev: the built-in development identity provider is selected; do not expose this server"
        );
    }
}

/// Starts the Vault on its own thread (the single writer of its trees and
/// the only holder of the keyring) and answers its reader.
/// Reads the key file again on SIGHUP and, with several instances on one
/// database, every [`KEY_RELOAD_SECONDS`]: a rotation made by another
/// instance reaches this one without a restart.
fn reload_keys(vault: Addr<Vault>, allow_insecure_permissions: bool, shared: bool) {
    use actix_web::rt::signal::unix::{signal, SignalKind};
    let reload = move |vault: Addr<Vault>, why: &'static str| async move {
        let msg = ReloadKeys {
            allow_insecure_permissions,
        };
        match vault.send(msg).await {
            Ok(Ok(Some(key_id))) => tracing::info!(key_id, why, "encryption keys reloaded"),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, why, "the key file could not be read again; keeping the keys in use")
            }
            Err(e) => tracing::error!(error = %e, "vault unavailable for a key reload"),
        }
    };
    match signal(SignalKind::hangup()) {
        Ok(mut hangups) => {
            let vault = vault.clone();
            actix_web::rt::spawn(async move {
                while hangups.recv().await.is_some() {
                    reload(vault.clone(), "SIGHUP").await;
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "SIGHUP will not reload the key file"),
    }
    if shared {
        actix_web::rt::spawn(async move {
            let mut every =
                actix_web::rt::time::interval(std::time::Duration::from_secs(KEY_RELOAD_SECONDS));
            loop {
                every.tick().await;
                reload(vault.clone(), "interval").await;
            }
        });
    }
}

fn start_vault(opened: &Opened, shared: bool) -> (Addr<Vault>, Arc<VaultReader>) {
    let trees = Owned::new(opened.store.clone());
    let codec = PublishedCodec::new(opened.codec.clone());
    let reader = Arc::new(VaultReader::new(trees.read_only(), codec.clone()));
    let key_source = opened.key_source.clone();
    let snapshot = opened.snapshot();
    // actix builds the actor once (again only if it stopped itself, which
    // it never does), from the keyring last published.
    let addr = SyncArbiter::start(1, move || {
        Vault::new(
            VaultCore::sharing(
                trees.clone(),
                codec.clone(),
                key_source.clone(),
                false,
                snapshot.clone(),
            )
            .with_shared_keys(shared),
        )
    });
    (addr, reader)
}

/// Binds `addr`.
fn bind(addr: &str) -> Result<TcpListener, StartupError> {
    TcpListener::bind(addr).map_err(|source| StartupError::Bind {
        addr: addr.to_owned(),
        source,
    })
}

/// Binds the admin API's own address (e.g. loopback only), when configured.
fn bind_admin(config: &Config, admin: &AdminToken) -> Result<Option<TcpListener>, StartupError> {
    let listen = &config.admin.listen;
    if listen.is_empty() || admin.0.is_none() {
        return Ok(None);
    }
    TcpListener::bind(listen)
        .map(Some)
        .map_err(|source| StartupError::Bind {
            addr: listen.clone(),
            source,
        })
}

/// Serves the admin API alone on its bound listener.
fn start_admin_listener(
    listener: TcpListener,
    state: &AppState,
    cert: Option<Arc<crate::tls::ReloadableCert>>,
) -> Result<Server, StartupError> {
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let state = state.clone();
    let server = HttpServer::new(move || {
        let state = state.clone();
        App::new()
            .wrap(from_fn(connections::guard))
            .wrap(from_fn(middleware::observe))
            .wrap(TracingLogger::<middleware::RequestSpan>::new())
            .configure(move |cfg: &mut web::ServiceConfig| http::configure_admin(cfg, state))
    })
    .workers(1);
    let server = match cert {
        Some(cert) => server.listen_rustls_0_23(listener, crate::tls::server_config(cert)),
        None => server.listen(listener),
    }
    .map_err(|source| StartupError::Bind {
        addr: address.clone(),
        source,
    })?
    .run();
    tracing::info!(address = %address, "admin API listening on its own address");
    Ok(server)
}

/// Starts the TokenBroker on its own thread: the single writer of its
/// trees, which makes code redemption and refresh rotation atomic.
fn start_broker(
    config: &Config,
    store: &SharedStore,
    successor: SuccessorKey,
) -> (Addr<TokenBroker>, Arc<BrokerReader>) {
    let policy = TokenPolicy {
        transaction_ttl: config.tokens.transaction_ttl,
        code_ttl: config.tokens.code_ttl,
        access_ttl: config.tokens.access_ttl,
        refresh_idle: config.tokens.refresh_idle,
        grant_lifetime: config.tokens.grant_lifetime,
        refresh_grace: config.tokens.refresh_grace,
        flush_every_write: false,
    };
    let trees = Owned::new(store.clone());
    let reader = Arc::new(BrokerReader::new(trees.read_only()));
    let addr = SyncArbiter::start(1, move || {
        TokenBroker::new(
            TokenBrokerCore::new(trees.clone(), policy).with_successor_key(successor.clone()),
        )
    });
    (addr, reader)
}

/// Starts the Registry on its own thread (the single writer of the
/// `clients` tree); its reader tells it about client uses.
fn start_registry(config: &Config, store: &SharedStore) -> (Addr<Registry>, Arc<RegistryReader>) {
    let expiry = ExpiryPolicy {
        unused_seconds: config.clients.unused_expiry.as_secs() as i64,
        idle_seconds: config.clients.expiry.as_secs() as i64,
    };
    let guard = FloodGuard {
        max_unused_per_origin: config.clients.max_unused_per_address,
        evict_unused_after: config
            .clients
            .evict_unused_after
            .map(|d| d.as_secs() as i64),
    };
    let max_clients = config.clients.max_clients;
    crate::metrics::METRICS.clients_max.set(max_clients as i64);
    // Several instances on one database: the cap counts in the database.
    let shared = store.is_remote();
    let trees = Owned::new(store.clone());
    let reader = Arc::new(RegistryReader::new(trees.read_only(), expiry));
    let addr = SyncArbiter::start(1, move || {
        Registry::new(
            RegistryCore::new(trees.clone(), expiry, max_clients, false)
                .with_flood_guard(guard)
                .with_shared_count(shared),
        )
    });
    reader.attach(addr.clone());
    (addr, reader)
}
