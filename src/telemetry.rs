//! Logging: bunyan-formatted JSON, one object per line, on a sink (stdout);
//! the audit records (target `audit`) also to their own file when asked.

use std::sync::Mutex;

use tracing::Subscriber;
use tracing_bunyan_formatter::{BunyanFormattingLayer, JsonStorageLayer};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// A subscriber writing bunyan JSON to `sink`. `RUST_LOG`, when set, wins
/// over `default_filter` (from `LOG_LEVEL`/`telemetry.log_level`); audit
/// records stay on at `info` unless `RUST_LOG` says otherwise.
pub fn get_subscriber<Sink>(
    name: &str,
    default_filter: &str,
    sink: Sink,
) -> impl Subscriber + Send + Sync
where
    Sink: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    subscriber_with_audit_file(name, default_filter, sink, None)
}

/// As [`get_subscriber`], with the audit records also appended to `audit`.
pub fn subscriber_with_audit_file<Sink>(
    name: &str,
    default_filter: &str,
    sink: Sink,
    audit: Option<std::fs::File>,
) -> impl Subscriber + Send + Sync
where
    Sink: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(format!("{default_filter},audit=info")))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let audit_layer = audit.map(|file| {
        BunyanFormattingLayer::new(name.into(), Mutex::new(file))
            .with_filter(Targets::new().with_target("audit", tracing::Level::INFO))
    });
    Registry::default()
        .with(filter)
        .with(JsonStorageLayer)
        .with(WithoutSpanStart(BunyanFormattingLayer::new(
            name.into(),
            sink,
        )))
        .with(audit_layer)
}

/// A bunyan layer without its `[... - START]` line per span: the `END`
/// line carries the same fields plus the elapsed time, so every request
/// logs one line instead of two (a quarter of the request path's cost went
/// to logging at the default level).
struct WithoutSpanStart<L>(L);

impl<S, L> Layer<S> for WithoutSpanStart<L>
where
    S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    L: Layer<S>,
{
    fn on_event(&self, event: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        self.0.on_event(event, ctx);
    }

    fn on_close(&self, id: tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        self.0.on_close(id, ctx);
    }
}

/// Installs `subscriber` for the whole process and routes `log` records
/// (sled's, actix's) through it. Call once.
pub fn init_subscriber(subscriber: impl Subscriber + Send + Sync + 'static) {
    if subscriber.try_init().is_err() {
        eprintln!("a tracing subscriber was already installed");
    }
}
