//! Logging: bunyan-formatted JSON, one object per line, on a sink (stdout),
//! or compact human-readable lines for a person at a terminal; the audit
//! records (target `audit`) also to their own file, as JSON, when asked.
//! Log lines name the module that wrote them (`target`), never a source
//! file path.

mod audit_lines;

use std::sync::{Arc, Mutex};

use audit_lines::{AuditLines, AUDIT};

use tracing::Subscriber;
use tracing_bunyan_formatter::{BunyanFormattingLayer, JsonStorageLayer};
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
    let audit_file = audit.map(|file| AuditLines::new(name, Mutex::new(file)));
    let (json, audit_lines, readable) = if human {
        let readable = tracing_subscriber::fmt::layer()
            .compact()
            .with_ansi(false)
            // One line per request, when its span closes (as in JSON).
            .with_span_events(FmtSpan::CLOSE)
            .with_writer(sink);
        (None, None, Some(readable))
    } else {
        let sink = Shared(Arc::new(sink));
        let audit_lines = AuditLines::new(name, sink.clone());
        (
            Some(WithoutSpanStart(bunyan(name, sink))),
            Some(audit_lines),
            None,
        )
    };
    Registry::default()
        .with(filter)
        .with(JsonStorageLayer)
        .with(json)
        .with(audit_lines)
        .with(readable)
        .with(audit_file)
}

/// One sink written by two layers (the bunyan lines and the audit lines).
struct Shared<Sink>(Arc<Sink>);

impl<Sink> Clone for Shared<Sink> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<'a, Sink> MakeWriter<'a> for Shared<Sink>
where
    Sink: MakeWriter<'a>,
{
    type Writer = Sink::Writer;

    fn make_writer(&'a self) -> Self::Writer {
        self.0.make_writer()
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        self.0.make_writer_for(meta)
    }
}

impl<S, W> Layer<S> for AuditLines<W>
where
    S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + 'static,
{
    fn on_event(&self, event: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() == AUDIT {
            self.write(event, &ctx);
        }
    }
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
/// to logging at the default level). Audit records are left to
/// [`AuditLines`].
struct WithoutSpanStart<L>(L);

impl<S, L> Layer<S> for WithoutSpanStart<L>
where
    S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    L: Layer<S>,
{
    fn on_event(&self, event: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() != AUDIT {
            self.0.on_event(event, ctx);
        }
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
