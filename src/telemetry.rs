//! Logging: bunyan-formatted JSON, one object per line.

use tracing::Subscriber;
use tracing_bunyan_formatter::{BunyanFormattingLayer, JsonStorageLayer};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry};

/// A subscriber writing bunyan JSON to `sink`. `RUST_LOG`, when set, wins
/// over `default_filter` (which comes from `LOG_LEVEL`/`telemetry.log_level`).
pub fn get_subscriber<Sink>(
    name: &str,
    default_filter: &str,
    sink: Sink,
) -> impl Subscriber + Send + Sync
where
    Sink: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(default_filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    Registry::default()
        .with(filter)
        .with(JsonStorageLayer)
        .with(BunyanFormattingLayer::new(name.into(), sink))
}

/// Installs `subscriber` for the whole process and routes `log` records
/// (sled's, actix's) through it. Call once.
pub fn init_subscriber(subscriber: impl Subscriber + Send + Sync + 'static) {
    if subscriber.try_init().is_err() {
        eprintln!("a tracing subscriber was already installed");
    }
}
