use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use drawbridge::clock::Clock;
use drawbridge::commands;
use drawbridge::configuration::{self, Config, Sources, StorageBackend, StorageMode};
use drawbridge::persistence::PersistenceError;
use drawbridge::startup::{Application, StartupError};
use drawbridge::telemetry::{init_subscriber, subscriber_with_audit_file};

/// OAuth 2.1 gateway for MCP servers: Dynamic Client Registration in front of Google sign-in.
#[derive(Parser)]
#[command(name = "drawbridge", version)]
struct Cli {
    /// Configuration file (default: $DRAWBRIDGE_CONFIG, else ./config.toml when present).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (the default).
    Serve,
    /// Print the effective configuration, secrets masked, and exit.
    CheckConfig,
    /// Rotate the encryption key: add a new key, re-seal every record under
    /// it, retire the old key. Run it again to finish an interrupted rotation.
    RotateKey,
    /// Print the OpenAPI document of the whole HTTP surface.
    Openapi,
    /// Copy every record from one storage mode to another, re-sealing as
    /// needed. Idempotent; the source is kept as a backup.
    MigrateStorage {
        /// FILE_PLAINTEXT, FILE_ENCRYPTED or MEMORY_WITH_BACKUP
        #[arg(long)]
        from: String,
        /// FILE_PLAINTEXT, FILE_ENCRYPTED or MEMORY_WITH_BACKUP
        #[arg(long)]
        to: String,
        /// sled or postgres: where --from's records are (default: storage.backend)
        #[arg(long, value_name = "BACKEND")]
        from_backend: Option<String>,
        /// sled or postgres: where --to's records go (default: storage.backend)
        #[arg(long, value_name = "BACKEND")]
        to_backend: Option<String>,
    },
    /// Apply the schema migrations to the PostgreSQL database
    /// (storage.database_url) and print its schema version.
    MigrateDb,
}

/// Exit status for configuration errors.
const CONFIG_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (config, sources) = match configuration::load(cli.config.as_deref()) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(CONFIG_ERROR);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::CheckConfig => check_config(&config, &sources),
        Command::Openapi => {
            print!("{}", drawbridge::http::openapi::document());
            ExitCode::SUCCESS
        }
        Command::Serve => serve(config),
        Command::RotateKey => rotate_key(&config),
        Command::MigrateStorage {
            from,
            to,
            from_backend,
            to_backend,
        } => migrate_storage(&config, [&from, &to], [from_backend, to_backend]),
        Command::MigrateDb => migrate_db(&config),
    }
}

fn check_config(config: &Config, sources: &Sources) -> ExitCode {
    match &sources.file {
        Some(f) => println!("# configuration file: {}", f.display()),
        None => println!("# configuration file: none (embedded defaults)"),
    }
    for (var, key) in &sources.variables {
        println!("# {key} set by ${var}");
    }
    println!("# base URL: {}", config.server.base_url);
    match toml::to_string_pretty(&config.settings().masked()) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot print the configuration: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Config) -> ExitCode {
    let audit_file = match open_audit_log(&config) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("configuration error: audit.log_path: {e}");
            return ExitCode::from(CONFIG_ERROR);
        }
    };
    // Log lines go through a channel to one writer thread, which writes
    // whatever has queued up in one go: the request path neither formats
    // into a locked stdout nor makes a write(2) per line. Not lossy: when
    // the queue is full, callers wait. Flushed when `_log_writer` drops.
    let (stdout, _log_writer) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("drawbridge-log")
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stdout(),
        ));
    let subscriber = subscriber_with_audit_file(
        "drawbridge",
        &config.telemetry.log_level,
        config
            .telemetry
            .log_format
            .human(std::io::stdout().is_terminal()),
        stdout,
        audit_file,
    );
    init_subscriber(subscriber);
    // Each connection costs two descriptors; systemd's default soft limit
    // (1 024) would run out after a few hundred slow clients.
    match drawbridge::open_files::raise_to_hard_limit() {
        Ok(limit) => tracing::info!(
            open_files_limit = limit.after,
            was = limit.before,
            "open-files limit raised to the hard limit"
        ),
        Err(e) => tracing::warn!(error = %e, "could not raise the open-files limit"),
    }
    let certificate_files = config.server.tls_files.is_some();
    let result = actix_web::rt::System::new().block_on(async move {
        if !certificate_files {
            carry_on_after_hangups();
        }
        let app = match Application::build(config, Clock::System).await {
            Ok(app) => app,
            Err(e) => return Err((start_up_status(&e), e.to_string())),
        };
        app.run_until_stopped()
            .await
            .map_err(|e| (ExitCode::FAILURE, e.to_string()))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((status, message)) => {
            tracing::error!(error = %message, "drawbridge stopped with an error");
            eprintln!("drawbridge: {message}");
            status
        }
    }
}

/// `systemctl reload` sends SIGHUP. With HTTPS from certificate files it
/// puts them in service again (src/tls); without, there is nothing to
/// reload, but SIGHUP's default action would end the process mid-request.
/// Must run inside the actix system.
fn carry_on_after_hangups() {
    use actix_web::rt::signal::unix::{signal, SignalKind};
    match signal(SignalKind::hangup()) {
        Ok(mut hangups) => {
            actix_web::rt::spawn(async move {
                while hangups.recv().await.is_some() {
                    tracing::info!("SIGHUP: no certificate files to reload; carrying on");
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "SIGHUP would stop the service"),
    }
}

/// A key file problem is the operator's configuration to fix: status 2.
fn start_up_status(e: &StartupError) -> ExitCode {
    match e {
        StartupError::Persistence(PersistenceError::Key(_))
        | StartupError::Persistence(PersistenceError::KeyMissing { .. })
        | StartupError::Tls(_) => ExitCode::from(CONFIG_ERROR),
        _ => ExitCode::FAILURE,
    }
}

/// The commands log to standard error, in the same format as the service.
fn init_cli_logging(config: &Config) {
    init_subscriber(subscriber_with_audit_file(
        "drawbridge",
        &config.telemetry.log_level,
        config
            .telemetry
            .log_format
            .human(std::io::stderr().is_terminal()),
        std::io::stderr,
        None,
    ));
}

fn rotate_key(config: &Config) -> ExitCode {
    init_cli_logging(config);
    match commands::rotate_key(config, Clock::System.now()) {
        Ok(report) => {
            report.audit();
            println!("current key: {}", report.new_key_id);
            println!(
                "re-sealed: {} records ({} already under the current key)",
                report.resealed, report.already_current
            );
            if report.retired_keys.is_empty() {
                println!("retired keys: none");
            } else {
                println!("retired keys: {}", report.retired_keys.join(", "));
            }
            if report.unreadable.is_empty() {
                ExitCode::SUCCESS
            } else {
                println!(
                    "unreadable records (left in place, old key kept): {}",
                    report.unreadable.join(", ")
                );
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("rotate-key: {e}");
            ExitCode::FAILURE
        }
    }
}

fn migrate_db(config: &Config) -> ExitCode {
    init_cli_logging(config);
    match commands::migrate_db(config) {
        Ok(version) => {
            println!(
                "database {}: schema version {version}",
                drawbridge::persistence::database_name(config)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("migrate-db: {e}");
            ExitCode::from(CONFIG_ERROR)
        }
    }
}

fn migrate_storage(config: &Config, modes: [&str; 2], backends: [Option<String>; 2]) -> ExitCode {
    init_cli_logging(config);
    let (Some(from), Some(to)) = (StorageMode::parse(modes[0]), StorageMode::parse(modes[1]))
    else {
        eprintln!("migrate-storage: --from and --to take FILE_PLAINTEXT, FILE_ENCRYPTED or MEMORY_WITH_BACKUP");
        return ExitCode::from(CONFIG_ERROR);
    };
    let backend = |given: &Option<String>| match given {
        None => Some(config.storage.backend),
        Some(raw) => StorageBackend::parse(raw),
    };
    let (Some(from_backend), Some(to_backend)) = (backend(&backends[0]), backend(&backends[1]))
    else {
        eprintln!("migrate-storage: --from-backend and --to-backend take sled or postgres");
        return ExitCode::from(CONFIG_ERROR);
    };
    let result = commands::migrate_between(
        config,
        (from, from_backend),
        (to, to_backend),
        Clock::System.now(),
    );
    match result {
        Ok(r) => {
            println!(
                "from {} ({}) to {} ({})",
                from.as_str(),
                r.source,
                to.as_str(),
                r.target
            );
            println!(
                "clients, grants and tokens: {} migrated, {} skipped (already present)",
                r.clients_migrated, r.clients_skipped
            );
            println!(
                "vault records: {} migrated, {} skipped (already present)",
                r.vault_migrated, r.vault_skipped
            );
            println!(
                "total: {} migrated, {} skipped, {} unreadable",
                r.migrated(),
                r.skipped(),
                r.unreadable.len()
            );
            for u in &r.unreadable {
                println!("unreadable: {u}");
            }
            println!(
                "the source at {} is unchanged; keep it as a backup until you are satisfied",
                r.source
            );
            if r.unreadable.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("migrate-storage: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The audit log file (append, mode 0600), when `audit.log_path` is set.
fn open_audit_log(config: &Config) -> std::io::Result<Option<std::fs::File>> {
    let path = &config.audit.log_path;
    if path.is_empty() {
        return Ok(None);
    }
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map(Some)
}
