//! Logging: bunyan-formatted JSON, one object per line, on a sink (stdout),
//! or compact human-readable lines for a person at a terminal; the audit
//! records (target `audit`) also to their own file, as JSON, when asked.
//! Log lines name the module that wrote them (`target`), never a source
//! file path.

use std::sync::Mutex;

use tracing::Subscriber;
use tracing_bunyan_formatter::{BunyanFormattingLayer, JsonStorageLayer};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::FmtSpan;
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
    subscriber_with_audit_file(name, default_filter, false, sink, None)
}

/// As [`get_subscriber`], with compact human-readable lines instead of JSON
/// when `human`, and the audit records also appended to `audit` (JSON).
pub fn subscriber_with_audit_file<Sink>(
    name: &str,
    default_filter: &str,
    human: bool,
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
        bunyan(name, Mutex::new(file))
            .with_filter(Targets::new().with_target("audit", tracing::Level::INFO))
    });
    let (json, readable) = if human {
        let readable = tracing_subscriber::fmt::layer()
            .compact()
            .with_ansi(false)
            // One line per request, when its span closes (as in JSON).
            .with_span_events(FmtSpan::CLOSE)
            .with_writer(sink);
        (None, Some(readable))
    } else {
        (Some(WithoutSpanStart(bunyan(name, sink))), None)
    };
    Registry::default()
        .with(filter)
        .with(JsonStorageLayer)
        .with(json)
        .with(readable)
        .with(audit_layer)
}

/// A bunyan layer without the `file` and `line` fields: they name source
/// files (a dependency's under the cargo registry, for its log records),
/// which says nothing to an operator; `target` names the module.
fn bunyan<Sink>(name: &str, sink: Sink) -> BunyanFormattingLayer<Sink>
where
    Sink: for<'a> MakeWriter<'a> + 'static,
{
    BunyanFormattingLayer::new(name.into(), sink)
        .skip_fields(["file", "line"].into_iter())
        // Only core fields (msg, level, …) are refused; these two are not.
        .expect("file and line are optional bunyan fields")
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
