//! The audit records' writer: one bunyan JSON object per `audit` event,
//! written straight into a byte buffer.
//!
//! `tracing-bunyan-formatter` first copies every field of the event (and of
//! the request's span) into a map of `serde_json::Value`s, one allocation
//! per field, and only then serializes the map; for the gateway's one
//! `mcp_request` record per MCP call that was 7.6 % of a request's CPU. The
//! lines written here have the same shape (`v`, `name`, `msg`, `level`,
//! `hostname`, `pid`, `time`, `target`, the event's fields, then the
//! current span's), so a reader cannot tell the two apart; other events
//! and the span lines stay with the bunyan layer.

use std::fmt::{self, Write as _};
use std::io::Write as _;

use time::format_description::well_known::Rfc3339;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_bunyan_formatter::JsonStorage;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The target of audit records (see [`crate::audit`]).
pub const AUDIT: &str = "audit";

/// Fields bunyan owns: an event or span field of the same name is dropped.
const CORE: [&str; 7] = ["v", "name", "msg", "level", "hostname", "pid", "time"];

/// Writes `audit` events to `writer` as bunyan JSON lines.
pub struct AuditLines<W> {
    /// `"name":…,` up to and excluding `msg`, escaped once at start.
    name: String,
    /// `"hostname":…,"pid":…,` escaped once at start.
    host: String,
    writer: W,
}

impl<W> AuditLines<W>
where
    W: for<'a> MakeWriter<'a>,
{
    pub fn new(name: &str, writer: W) -> Self {
        let hostname = gethostname::gethostname().to_string_lossy().into_owned();
        Self {
            name: format!("\"name\":{},", json_string(name)),
            host: format!(
                "\"hostname\":{},\"pid\":{},",
                json_string(&hostname),
                std::process::id()
            ),
            writer,
        }
    }

    /// Formats and writes one event; `span` is the current span, whose
    /// stored fields follow the event's.
    pub fn write<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let span = ctx.lookup_current();

        let mut line = String::with_capacity(256 + fields.json.len());
        line.push_str("{\"v\":0,");
        line.push_str(&self.name);
        line.push_str("\"msg\":");
        let message = fields.message.as_deref().unwrap_or(meta.target());
        line.push('"');
        if let Some(span) = &span {
            // bunyan's "[SPAN NAME - EVENT] message" inside a span.
            line.push('[');
            push_escaped(&mut line, &span.metadata().name().to_uppercase());
            line.push_str(" - EVENT] ");
        }
        push_escaped(&mut line, message);
        line.push('"');
        let _ = write!(line, ",\"level\":{},", bunyan_level(meta.level()));
        line.push_str(&self.host);
        if let Ok(now) = time::OffsetDateTime::now_utc().format(&Rfc3339) {
            line.push_str("\"time\":\"");
            line.push_str(&now);
            line.push_str("\",");
        }
        line.push_str("\"target\":");
        push_json_string(&mut line, meta.target());
        line.push_str(&fields.json);
        if let Some(span) = &span {
            if let Some(stored) = span.extensions().get::<JsonStorage>() {
                for (key, value) in stored.values() {
                    if CORE.contains(key) {
                        continue;
                    }
                    line.push(',');
                    push_json_string(&mut line, key);
                    line.push(':');
                    // A `Value` always serializes, into a `String` too.
                    let _ = write!(line, "{value}");
                }
            }
        }
        line.push_str("}\n");
        let _ = self.writer.make_writer_for(meta).write_all(line.as_bytes());
    }
}

/// An event's fields as `,"key":value` pairs, and its message apart.
struct Fields {
    json: String,
    message: Option<String>,
}

impl Default for Fields {
    fn default() -> Self {
        Self {
            json: String::with_capacity(256),
            message: None,
        }
    }
}

impl Fields {
    fn key(&mut self, field: &Field) -> bool {
        let name = field.name();
        let name = name.strip_prefix("r#").unwrap_or(name);
        if CORE.contains(&name) {
            return false;
        }
        self.json.push(',');
        push_json_string(&mut self.json, name);
        self.json.push(':');
        true
    }
}

impl Visit for Fields {
    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.key(field) {
            let _ = write!(self.json, "{value}");
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.key(field) {
            let _ = write!(self.json, "{value}");
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if self.key(field) {
            // JSON has no NaN or infinity: as serde_json does, null.
            match value.is_finite() {
                true => {
                    let _ = write!(self.json, "{value}");
                }
                false => self.json.push_str("null"),
            }
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.key(field) {
            self.json.push_str(if value { "true" } else { "false" });
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_owned());
        } else if self.key(field) {
            push_json_string(&mut self.json, value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = Some(format!("{value:?}"));
        } else if !field.name().starts_with("log.") && self.key(field) {
            push_json_string(&mut self.json, &format!("{value:?}"));
        }
    }
}

fn bunyan_level(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 50,
        Level::WARN => 40,
        Level::INFO => 30,
        Level::DEBUG => 20,
        Level::TRACE => 10,
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_json_string(&mut out, s);
    out
}

/// Appends `s` as a JSON string (RFC 8259 escapes: quote, backslash and
/// control characters; everything else as is, in UTF-8).
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    push_escaped(out, s);
    out.push('"');
}

/// Appends `s` escaped for the inside of a JSON string.
fn push_escaped(out: &mut String, s: &str) {
    let mut start = 0;
    for (i, byte) in s.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        match escape {
            "" => {
                let _ = write!(out, "\\u{byte:04x}");
            }
            escape => out.push_str(escape),
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_bunyan_formatter::{BunyanFormattingLayer, JsonStorageLayer};
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// A sink the test reads back.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;

        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    struct Only<W>(AuditLines<W>);

    impl<S, W> tracing_subscriber::Layer<S> for Only<W>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        W: for<'a> MakeWriter<'a> + 'static,
    {
        fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
            self.0.write(event, &ctx);
        }
    }

    fn lines(buffer: &Buffer) -> Vec<serde_json::Map<String, serde_json::Value>> {
        String::from_utf8(buffer.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).expect("every line is one JSON object"))
            .collect()
    }

    /// The same events through bunyan's layer and ours give the same
    /// objects, but for the time (read separately).
    #[test]
    fn lines_read_as_bunyan_writes_them() {
        let (ours, theirs) = (Buffer::default(), Buffer::default());
        let subscriber = tracing_subscriber::registry()
            .with(JsonStorageLayer)
            .with(Only(AuditLines::new("drawbridge", ours.clone())))
            .with(
                BunyanFormattingLayer::new("drawbridge".into(), theirs.clone())
                    .skip_fields(["file", "line"].into_iter())
                    .unwrap(),
            );
        tracing::subscriber::with_default(subscriber, || {
            let span =
                tracing::info_span!("HTTP request", http.target = "/mcp", request_id = "r\"1");
            let _entered = span.enter();
            let method = "tools/call";
            tracing::info!(
                target: "audit", parent: None, event_type = "mcp_request", client_id = "mcp_a",
                user = Some("sha256:00"), missing = None::<&str>, status = 403u16, delta = -2i64,
                ratio = 0.5f64, success = false, r#type = "x", name = "shadowed",
                "MCP {method} refused \"quoted\"\n"
            );
            drop(_entered);
            tracing::warn!(target: "audit", event_type = "outside", "no span");
            tracing::error!(target: "audit", event_type = "no message");
        });
        let ours = lines(&ours);
        // bunyan also writes the span's START and END lines.
        let theirs: Vec<_> = lines(&theirs)
            .into_iter()
            .filter(|l| !l["msg"].as_str().unwrap().ends_with("START]"))
            .filter(|l| !l["msg"].as_str().unwrap().ends_with("END]"))
            .collect();
        assert_eq!(ours.len(), 3);
        assert_eq!(ours.len(), theirs.len());
        for (mut a, mut b) in ours.into_iter().zip(theirs) {
            let (ta, tb) = (a.remove("time").unwrap(), b.remove("time").unwrap());
            for t in [ta, tb] {
                let t = t.as_str().unwrap().to_owned();
                time::OffsetDateTime::parse(&t, &Rfc3339).expect("an RFC 3339 time");
            }
            assert_eq!(a, b);
        }
    }

    #[test]
    fn strings_are_escaped_as_json_reads_them() {
        let tricky = "a\"b\\c\nd\re\tf\u{8}g\u{c}h\u{1}i\u{1f}j é 🦀 \u{7f}";
        let mut out = String::new();
        push_json_string(&mut out, tricky);
        let back: String = serde_json::from_str(&out).unwrap();
        assert_eq!(back, tricky);
        assert_eq!(out, serde_json::to_string(tricky).unwrap());
    }
}
