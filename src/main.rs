use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use drawbridge::clock::Clock;
use drawbridge::configuration::{self, Config, Sources};
use drawbridge::startup::Application;
use drawbridge::telemetry::{get_subscriber, init_subscriber};

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
        Command::Serve => serve(config),
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
    println!("# base URL: {}", config.base_url);
    match toml::to_string_pretty(&config.settings.masked()) {
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
    let subscriber = get_subscriber(
        "drawbridge",
        &config.settings.telemetry.log_level,
        std::io::stdout,
    );
    init_subscriber(subscriber);
    let result = actix_web::rt::System::new().block_on(async move {
        let app = Application::build(config, Clock::System)?;
        app.run_until_stopped().await?;
        anyhow::Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "drawbridge stopped with an error");
            eprintln!("drawbridge: {e}");
            ExitCode::FAILURE
        }
    }
}
