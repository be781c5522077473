//! Every Prometheus metric Drawbridge exports (`GET /metrics`), in one
//! registry. Names are under `drawbridge_`; route labels are templates
//! (`/oauth/register/{client_id}`), never raw paths, so label sets stay small.

use std::sync::LazyLock;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    pub registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub registrations: IntCounterVec,
    pub client_documents: IntCounterVec,
    pub token_exchanges: IntCounterVec,
    pub upstream_requests: IntCounterVec,
    pub upstream_duration: HistogramVec,
    pub consent: IntCounterVec,
    pub logins: IntCounterVec,
    pub access_refused: IntCounterVec,
    pub rate_limited: IntCounterVec,
    pub gateway_requests: IntCounterVec,
    pub gateway_duration: HistogramVec,
    pub janitor_runs: IntCounter,
    pub janitor_removed: IntCounterVec,
    pub janitor_duration: Histogram,
    pub store_flushes: IntCounterVec,
    pub store_flush_duration: HistogramVec,
    pub db_calls: IntCounterVec,
    pub db_call_duration: HistogramVec,
    pub db_pool: IntGaugeVec,
    pub live: IntGaugeVec,
    pub certificate_expiry: IntGaugeVec,
    pub certificates_issued: IntCounterVec,
    pub clients_max: IntGauge,
    pub janitor_leader: IntGauge,
    pub store_size: IntGauge,
    pub process_resident_memory: IntGauge,
    pub process_cpu_seconds: prometheus::Gauge,
    pub process_open_fds: IntGauge,
    pub process_start_time: IntGauge,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(c.clone()))
        .expect("unique metric");
    c
}

fn histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: Vec<f64>,
) -> HistogramVec {
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
        .expect("valid metric");
    registry
        .register(Box::new(h.clone()))
        .expect("unique metric");
    h
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric");
    registry
        .register(Box::new(g.clone()))
        .expect("unique metric");
    g
}

const LATENCY: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl Metrics {
    fn new() -> Self {
        let r = Registry::new();
        let janitor_duration = Histogram::with_opts(
            HistogramOpts::new(
                "drawbridge_janitor_run_duration_seconds",
                "Duration of janitor runs",
            )
            .buckets(LATENCY.to_vec()),
        )
        .expect("valid metric");
        r.register(Box::new(janitor_duration.clone()))
            .expect("unique metric");
        let janitor_runs =
            IntCounter::new("drawbridge_janitor_runs_total", "Janitor runs").expect("valid metric");
        r.register(Box::new(janitor_runs.clone()))
            .expect("unique metric");
        let live = IntGaugeVec::new(
            Opts::new(
                "drawbridge_live_records",
                "Records held, by kind (clients, grants, tokens, users)",
            ),
            &["kind"],
        )
        .expect("valid metric");
        r.register(Box::new(live.clone())).expect("unique metric");
        let certificate_expiry = IntGaugeVec::new(
            Opts::new(
                "drawbridge_tls_certificate_expiry_timestamp_seconds",
                "When the served HTTPS certificate expires (Unix seconds), by listener (public, admin)",
            ),
            &["listener"],
        )
        .expect("valid metric");
        r.register(Box::new(certificate_expiry.clone()))
            .expect("unique metric");
        let cpu =
            prometheus::Gauge::new("process_cpu_seconds_total", "CPU time used by the process")
                .expect("valid metric");
        r.register(Box::new(cpu.clone())).expect("unique metric");
        Self {
            http_requests: counter(
                &r,
                "drawbridge_http_requests_total",
                "HTTP requests by route template, method and status",
                &["route", "method", "status"],
            ),
            http_duration: histogram(
                &r,
                "drawbridge_http_request_duration_seconds",
                "HTTP request latency by route template and method",
                &["route", "method"],
                LATENCY.to_vec(),
            ),
            registrations: counter(
                &r,
                "drawbridge_registrations_total",
                "Client registrations by outcome (created, an RFC 7591 error code, or evicted_unused: a full registry evicted a never-used registration to make room)",
                &["outcome"],
            ),
            client_documents: counter(
                &r,
                "drawbridge_client_metadata_documents_total",
                "Client ID Metadata Document fetches by outcome (fetched, invalid_document, a fetch failure such as status or timeout), and documents the operator's policy refused without fetching (refused_by_policy)",
                &["outcome"],
            ),
            token_exchanges: counter(
                &r,
                "drawbridge_token_exchanges_total",
                "Token endpoint requests by grant type and outcome",
                &["grant_type", "outcome"],
            ),
            upstream_requests: counter(
                &r,
                "drawbridge_upstream_requests_total",
                "Calls to the upstream identity provider by endpoint and outcome",
                &["endpoint", "outcome"],
            ),
            upstream_duration: histogram(
                &r,
                "drawbridge_upstream_request_duration_seconds",
                "Latency of calls to the upstream identity provider",
                &["endpoint"],
                LATENCY.to_vec(),
            ),
            consent: counter(
                &r,
                "drawbridge_consent_decisions_total",
                "Consent page answers",
                &["decision"],
            ),
            logins: counter(
                &r,
                "drawbridge_upstream_callbacks_total",
                "Upstream callbacks by outcome (RFC error code, browser_mismatch for a callback from a browser that did not approve the sign-in, refused_by_policy for a person the access policy does not admit, or ok)",
                &["outcome"],
            ),
            access_refused: counter(
                &r,
                "drawbridge_access_refused_total",
                "People the access policy refused, by stage (signin: nothing stored; gateway, refresh: a signed-in user no longer allowed) and reason (denied, not_allowed, no_verified_email)",
                &["stage", "reason"],
            ),
            rate_limited: counter(
                &r,
                "drawbridge_rate_limited_total",
                "Requests refused by a rate limit, by limit",
                &["limit"],
            ),
            gateway_requests: counter(&r, "drawbridge_gateway_requests_total", "MCP gateway requests by outcome (forwarded, unauthorized, insufficient_scope, upstream_token, timeout, unreachable, not_configured, refused, upstream_unauthorized: the MCP server answered 401 and the client was told to sign in again)", &["outcome"]),
            gateway_duration: histogram(&r, "drawbridge_gateway_request_duration_seconds", "Time to the upstream MCP server's response headers, by outcome", &["outcome"], LATENCY.to_vec()),
            janitor_runs,
            janitor_removed: counter(
                &r,
                "drawbridge_janitor_removed_total",
                "Records removed by the janitor, by kind",
                &["kind"],
            ),
            janitor_duration,
            store_flushes: counter(
                &r,
                "drawbridge_store_flushes_total",
                "Group-commit flushes of the store by outcome (ok, failed); each covers every write waiting at that moment",
                &["outcome"],
            ),
            store_flush_duration: histogram(
                &r,
                "drawbridge_store_flush_duration_seconds",
                "Time one group-commit flush (fsync) takes",
                &[],
                LATENCY.to_vec(),
            ),
            db_calls: counter(
                &r,
                "drawbridge_db_calls_total",
                "Calls to the shared database (storage.backend = \"postgres\") by operation (get, insert, remove, scan, apply, count, size) and outcome (ok, conflict, timeout, unavailable, failed)",
                &["operation", "outcome"],
            ),
            db_call_duration: histogram(
                &r,
                "drawbridge_db_call_duration_seconds",
                "Time one call to the shared database takes, a connection's wait included, by operation",
                &["operation"],
                LATENCY.to_vec(),
            ),
            db_pool: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "drawbridge_db_pool_connections",
                        "The database connection pool after the last call: open, idle, max, and calls waiting for one",
                    ),
                    &["state"],
                )
                .expect("valid metric");
                r.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            live,
            certificate_expiry,
            certificates_issued: counter(
                &r,
                "drawbridge_acme_orders_total",
                "ACME certificate orders by outcome (issued, failed)",
                &["outcome"],
            ),
            clients_max: gauge(
                &r,
                "drawbridge_clients_max",
                "The client cap (clients.max_clients), to compare with drawbridge_live_records{kind=\"clients\"}",
            ),
            janitor_leader: gauge(
                &r,
                "drawbridge_janitor_leader",
                "1 while this instance holds the janitor's lease (several instances on one database: exactly one purges); 1 too for a single instance",
            ),
            store_size: gauge(
                &r,
                "drawbridge_store_size_bytes",
                "Bytes the store uses on disk",
            ),
            process_resident_memory: gauge(
                &r,
                "process_resident_memory_bytes",
                "Resident memory of the process",
            ),
            process_cpu_seconds: cpu,
            process_open_fds: gauge(&r, "process_open_fds", "Open file descriptors"),
            process_start_time: gauge(
                &r,
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch",
            ),
            registry: r,
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        self.sample_process();
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// Reads the process figures from /proc (Linux); elsewhere they stay 0.
    fn sample_process(&self) {
        let page = 4096;
        if let Ok(statm) = std::fs::read_to_string("/proc/self/statm") {
            if let Some(rss) = statm
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<i64>().ok())
            {
                self.process_resident_memory.set(rss * page);
            }
        }
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the command name (which may contain spaces).
            if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
                let f: Vec<&str> = rest.split_whitespace().collect();
                let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
                // utime and stime are fields 14 and 15 (1-based) of stat; here 11 and 12.
                self.process_cpu_seconds
                    .set((ticks(11) + ticks(12)) / 100.0);
            }
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            self.process_open_fds.set(fds.count() as i64);
        }
    }
}

/// The process-wide metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let m = Metrics::new();
    // Known label sets start at zero, so dashboards show series before the
    // first event of each kind.
    m.registrations.with_label_values(&["created"]);
    for grant in ["authorization_code", "refresh_token"] {
        m.token_exchanges.with_label_values(&[grant, "success"]);
        m.token_exchanges
            .with_label_values(&[grant, "invalid_grant"]);
    }
    for endpoint in ["token", "refresh", "userinfo", "revoke"] {
        m.upstream_requests.with_label_values(&[endpoint, "ok"]);
    }
    for limit in ["registration", "token", "authorize", "failed_client_auth"] {
        m.rate_limited.with_label_values(&[limit]);
    }
    for kind in [
        "clients",
        "grants",
        "tokens",
        "codes",
        "transactions",
        "users",
    ] {
        m.janitor_removed.with_label_values(&[kind]);
    }
    for decision in ["approved", "denied"] {
        m.consent.with_label_values(&[decision]);
    }
    // The failures the alert rules (dashboards/alerts.yml) count start at
    // zero too, so the first one is a rise and not a new series.
    for grant in ["authorization_code", "refresh_token"] {
        for outcome in ["server_error", "temporarily_unavailable"] {
            m.token_exchanges.with_label_values(&[grant, outcome]);
        }
    }
    for outcome in [
        "ok",
        "browser_mismatch",
        "refused_by_policy",
        "server_error",
        "temporarily_unavailable",
    ] {
        m.logins.with_label_values(&[outcome]);
    }
    for stage in ["signin", "gateway", "refresh"] {
        for reason in ["denied", "not_allowed", "no_verified_email"] {
            m.access_refused.with_label_values(&[stage, reason]);
        }
    }
    m.registrations.with_label_values(&["evicted_unused"]);
    for outcome in ["fetched", "invalid_document", "refused_by_policy"] {
        m.client_documents.with_label_values(&[outcome]);
    }
    for outcome in ["ok", "failed"] {
        m.store_flushes.with_label_values(&[outcome]);
    }
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    m.process_start_time.set(start);
    m
});

/// Records one upstream call.
pub fn upstream(endpoint: &str, outcome: &str, seconds: f64) {
    METRICS
        .upstream_requests
        .with_label_values(&[endpoint, outcome])
        .inc();
    METRICS
        .upstream_duration
        .with_label_values(&[endpoint])
        .observe(seconds);
}

/// Counts one Client ID Metadata Document outcome.
pub fn client_document(outcome: &str) {
    METRICS.client_documents.with_label_values(&[outcome]).inc();
}

/// Records one call to the shared database (PostgreSQL).
pub fn record_database_call(
    operation: &'static str,
    took: std::time::Duration,
    outcome: crate::storage::postgres::CallOutcome,
    pool: crate::storage::postgres::PoolUse,
) {
    METRICS
        .db_calls
        .with_label_values(&[operation, outcome.as_str()])
        .inc();
    METRICS
        .db_call_duration
        .with_label_values(&[operation])
        .observe(took.as_secs_f64());
    for (state, n) in [
        ("open", pool.open),
        ("idle", pool.idle),
        ("max", pool.max),
        ("waiting", pool.waiting),
    ] {
        METRICS.db_pool.with_label_values(&[state]).set(n as i64);
    }
}

/// Records one group-commit flush.
pub fn record_flush(took: std::time::Duration, ok: bool) {
    METRICS
        .store_flushes
        .with_label_values(&[if ok { "ok" } else { "failed" }])
        .inc();
    METRICS
        .store_flush_duration
        .with_label_values::<&str>(&[])
        .observe(took.as_secs_f64());
}
