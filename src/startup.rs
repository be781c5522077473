//! Building and running the application.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::{Actor, SyncArbiter};
use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpServer};
use tracing_actix_web::TracingLogger;

use crate::actors::janitor::Janitor;
use crate::actors::registry::{ExpiryPolicy, Registry, RegistryCore};
use crate::clock::Clock;
use crate::configuration::{Config, StorageMode};
use crate::http::{self, AppState};
use crate::storage::{keys, MemoryStore, SharedStore, SledStore, Tree};

/// Name of the database directory inside `CREDENTIALS_DIR`.
pub const DB_DIR: &str = "drawbridge.db";

pub struct Application {
    port: u16,
    server: Server,
    store: SharedStore,
    config: Arc<Config>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("storage: {0}")]
    Storage(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

impl Application {
    /// Opens storage, starts the actors and binds the listener. Call inside
    /// an actix system. Port 0 binds a free port (tests).
    pub fn build(mut config: Config, clock: Clock) -> Result<Self, StartupError> {
        let addr = format!(
            "{}:{}",
            config.settings.server.host, config.settings.server.port
        );
        let listener = TcpListener::bind(&addr).map_err(|source| StartupError::Bind {
            addr: addr.clone(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind { addr, source })?
            .port();
        if config.settings.server.base_url.is_empty() {
            // Port 0 was resolved by the bind: advertise the real one.
            let _ = config.base_url.set_port(Some(port));
        }

        let store = open_store(&config)?;
        let config = Arc::new(config);
        let registry = start_registry(&config, store.clone())?;
        Janitor::new(registry.clone(), clock.clone(), config.cleanup_interval).start();

        let server_settings = &config.settings.server;

        let state = AppState {
            config: config.clone(),
            registry,
            clock,
        };
        let mut server = HttpServer::new(move || {
            let state = state.clone();
            App::new()
                .wrap(TracingLogger::default())
                .configure(move |cfg: &mut web::ServiceConfig| http::configure(cfg, state))
        })
        .shutdown_timeout(server_settings.shutdown_timeout_seconds as u64)
        .client_request_timeout(Duration::from_secs(10));
        if server_settings.workers > 0 {
            server = server.workers(server_settings.workers as usize);
        }
        let server = server
            .listen(listener)
            .map_err(|source| StartupError::Bind {
                addr: format!("port {port}"),
                source,
            })?
            .run();
        tracing::info!(
            base_url = %config.base_url, port, storage_mode = config.storage_mode.as_str(),
            upstream_provider = %config.settings.upstream.provider,
            "OAuth Proxy initialized"
        );
        warn_about(&config);
        Ok(Self {
            port,
            server,
            store,
            config,
        })
    }

    /// The configuration the app runs with (base URL resolved).
    pub fn config(&self) -> Arc<Config> {
        self.config.clone()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle that stops the server gracefully.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped (SIGINT/SIGTERM or [`ServerHandle::stop`]): stops
    /// accepting, lets requests in flight finish, then flushes the store.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        match self.store.flush() {
            Ok(()) => tracing::info!("storage flushed; stopped"),
            Err(e) => tracing::error!(error = %e, "flushing storage at shutdown failed"),
        }
        result
    }
}

fn warn_about(config: &Config) {
    match config.storage_mode {
        StorageMode::FilePlaintext => {
            tracing::warn!("CREDENTIAL_STORAGE_MODE=FILE_PLAINTEXT is for development only")
        }
        StorageMode::MemoryOnly => tracing::warn!(
            "CREDENTIAL_STORAGE_MODE=MEMORY_ONLY: every registration is lost on restart"
        ),
        StorageMode::MemoryWithBackup => {
            tracing::warn!("CREDENTIAL_STORAGE_MODE=MEMORY_WITH_BACKUP: snapshots are not written yet; records live in memory only")
        }
        StorageMode::FileEncrypted => {}
    }
    if config.settings.server.base_url.is_empty()
        && ["0.0.0.0", "::"].contains(&config.settings.server.host.as_str())
    {
        tracing::warn!("listening on all interfaces without BASE_URL: advertised URLs name {}, set BASE_URL to the public URL", config.base_url);
    }
    if config.settings.upstream.provider == "dev" {
        tracing::warn!("UPSTREAM_PROVIDER=dev: the built-in development identity provider is selected; do not expose this server");
    }
}

/// Opens the store the configured storage mode calls for and checks its
/// schema version.
pub fn open_store(config: &Config) -> Result<SharedStore, StartupError> {
    let store: SharedStore = if config.storage_mode.on_disk() {
        let dir = &config.credentials_dir;
        create_private_dir(dir)
            .map_err(|e| StartupError::Storage(format!("cannot create {}: {e}", dir.display())))?;
        Arc::new(
            SledStore::open(&dir.join(DB_DIR)).map_err(|e| StartupError::Storage(e.to_string()))?,
        )
    } else {
        Arc::new(MemoryStore::new())
    };
    check_schema(&store)?;
    Ok(store)
}

fn check_schema(store: &SharedStore) -> Result<(), StartupError> {
    let storage = |e: crate::storage::StoreError| StartupError::Storage(e.to_string());
    match store.get(Tree::Meta, keys::SCHEMA_KEY).map_err(storage)? {
        None => {
            store.insert(Tree::Meta, keys::SCHEMA_KEY, keys::SCHEMA_VERSION.to_be_bytes().to_vec()).map_err(storage)?;
            store.flush().map_err(storage)
        }
        Some(v) if v.as_slice() == keys::SCHEMA_VERSION.to_be_bytes() => Ok(()),
        Some(v) => Err(StartupError::Storage(format!(
            "the database was written by another version of Drawbridge (schema {:?}, this build reads {})",
            v,
            keys::SCHEMA_VERSION
        ))),
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(dir = %dir.display(), mode = format!("{mode:o}"), "credentials directory is readable by others; run: chmod 700 {}", dir.display());
    }
    Ok(())
}

#[cfg(not(unix))]
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

fn start_registry(
    config: &Arc<Config>,
    store: SharedStore,
) -> Result<actix::Addr<Registry>, StartupError> {
    let expiry = ExpiryPolicy {
        unused_seconds: config.unused_client_expiry.as_secs() as i64,
        idle_seconds: config.client_expiry.as_secs() as i64,
    };
    let open = {
        let config = config.clone();
        move || {
            RegistryCore::open(
                store.clone(),
                expiry,
                config.max_clients,
                config.flush_every_write,
            )
        }
    };
    let first = Mutex::new(Some(
        open().map_err(|e| StartupError::Storage(e.to_string()))?,
    ));
    // One thread: the Registry is the single writer of its tree. The factory
    // runs again only if the actor's thread has to restart.
    Ok(SyncArbiter::start(1, move || {
        let core = first.lock().ok().and_then(|mut c| c.take());
        Registry::new(core.unwrap_or_else(|| open().expect("storage that opened at start reopens")))
    }))
}
