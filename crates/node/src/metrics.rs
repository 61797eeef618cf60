//! Prometheus metrics. Each instance has its own registry, so several instances in one process
//! (tests, `ferry demo`) keep separate figures.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunLabels {
    pub link: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LinkLabels {
    pub link: String,
}

pub struct Metrics {
    registry: Registry,
    pub sync_runs: Family<RunLabels, Counter>,
    pub sync_rows: Family<LinkLabels, Counter>,
    pub sync_bytes: Family<LinkLabels, Counter>,
    pub sync_rows_sent: Family<LinkLabels, Counter>,
    pub sync_bytes_sent: Family<LinkLabels, Counter>,
    /// Unix seconds of the last completed run per link, and the seconds since: both set from
    /// `last_success` at each scrape (a family cannot be listed, so the map is the record).
    sync_last_success: Family<LinkLabels, Gauge>,
    sync_lag: Family<LinkLabels, Gauge>,
    last_success: std::sync::Mutex<std::collections::HashMap<String, i64>>,
    pub requests: Family<RequestLabels, Counter>,
    pub request_seconds: Family<RequestLabels, Histogram>,
    pub rows_imported: Family<KindLabels, Counter>,
    pub bytes_imported: Family<KindLabels, Counter>,
    pub bytes_exported: Family<KindLabels, Counter>,
    /// Edits from copies judged here, and the conflicts among them.
    pub two_way_edits: Counter,
    pub conflicts: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("ferry");
        let requests = Family::<RequestLabels, Counter>::default();
        let request_seconds = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 4.0, 9))
        });
        let rows_imported = Family::<KindLabels, Counter>::default();
        let bytes_imported = Family::<KindLabels, Counter>::default();
        let bytes_exported = Family::<KindLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests served", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to the response head",
            request_seconds.clone(),
        );
        registry.register(
            "rows_imported",
            "Rows and features imported",
            rows_imported.clone(),
        );
        registry.register(
            "bytes_imported",
            "Bytes received by imports",
            bytes_imported.clone(),
        );
        registry.register(
            "bytes_exported",
            "Bytes sent by exports",
            bytes_exported.clone(),
        );
        let two_way_edits = Counter::default();
        let conflicts = Counter::default();
        registry.register(
            "two_way_edits",
            "Edits from copies of this instance's two-way items, judged here",
            two_way_edits.clone(),
        );
        registry.register(
            "conflicts",
            "Concurrent edits found by two-way editing, each kept with both versions",
            conflicts.clone(),
        );
        let sync_runs = Family::<RunLabels, Counter>::default();
        let sync_rows = Family::<LinkLabels, Counter>::default();
        let sync_bytes = Family::<LinkLabels, Counter>::default();
        let sync_rows_sent = Family::<LinkLabels, Counter>::default();
        let sync_bytes_sent = Family::<LinkLabels, Counter>::default();
        let sync_last_success = Family::<LinkLabels, Gauge>::default();
        let sync_lag = Family::<LinkLabels, Gauge>::default();
        registry.register(
            "sync_runs",
            "Sync runs by link and status",
            sync_runs.clone(),
        );
        registry.register(
            "sync_rows_received",
            "Rows received by sync",
            sync_rows.clone(),
        );
        registry.register(
            "sync_bytes_received",
            "Bytes received by sync",
            sync_bytes.clone(),
        );
        registry.register(
            "sync_rows_sent",
            "Rows sent by sync (updates and deletes included)",
            sync_rows_sent.clone(),
        );
        registry.register(
            "sync_bytes_sent",
            "Bytes sent by sync",
            sync_bytes_sent.clone(),
        );
        registry.register(
            "sync_last_success_timestamp_seconds",
            "When the last run of a link completed",
            sync_last_success.clone(),
        );
        registry.register(
            "sync_lag_seconds",
            "Seconds since the last completed run of a link, as of this scrape",
            sync_lag.clone(),
        );
        Metrics {
            registry,
            sync_runs,
            sync_rows,
            sync_bytes,
            sync_rows_sent,
            sync_bytes_sent,
            sync_last_success,
            sync_lag,
            last_success: Default::default(),
            requests,
            request_seconds,
            rows_imported,
            bytes_imported,
            bytes_exported,
            two_way_edits,
            conflicts,
        }
    }

    /// The text page. `live`: the links that still exist, when known; the lag and last success
    /// of the others are dropped (an ended link has no lag to alert on).
    pub fn render(&self, live: Option<&[String]>) -> String {
        let now = jiff::Timestamp::now().as_second();
        let mut last_success = self
            .last_success
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(live) = live {
            last_success.retain(|link, _| {
                let keep = live.contains(link);
                if !keep {
                    let labels = LinkLabels { link: link.clone() };
                    self.sync_lag.remove(&labels);
                    self.sync_last_success.remove(&labels);
                }
                keep
            });
        }
        for (link, at) in last_success.iter() {
            let labels = LinkLabels { link: link.clone() };
            self.sync_last_success.get_or_create(&labels).set(*at);
            self.sync_lag.get_or_create(&labels).set(now - at);
        }
        drop(last_success);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

pub fn kind(kind: &str) -> KindLabels {
    KindLabels {
        kind: kind.to_string(),
    }
}

impl Metrics {
    /// Counts and times an answered request, by its method (standard ones only: made-up ones
    /// must not grow the label set) and route template (not the raw path, for the same reason).
    pub fn request_done(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let method = match method {
            m @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => m,
            _ => "other",
        };
        let labels = RequestLabels {
            method: method.to_string(),
            route: route.to_string(),
            status,
        };
        self.requests.get_or_create(&labels).inc();
        self.request_seconds.get_or_create(&labels).observe(seconds);
    }

    /// Counts a finished sync run.
    pub fn sync_run(&self, run: &ferry_proto::SyncRun) {
        self.sync_runs
            .get_or_create(&RunLabels {
                link: run.link.clone(),
                status: run.status.clone(),
            })
            .inc();
        let link = LinkLabels {
            link: run.link.clone(),
        };
        self.sync_rows
            .get_or_create(&link)
            .inc_by(run.rows_received.max(0) as u64);
        self.sync_bytes
            .get_or_create(&link)
            .inc_by(run.bytes_received.max(0) as u64);
        if run.status.starts_with("completed") {
            self.last_success
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(run.link.clone(), jiff::Timestamp::now().as_second());
        }
    }

    /// Counts what a served request sent.
    pub fn sync_sent(&self, link: &str, rows: i64, bytes: i64) {
        let link = LinkLabels {
            link: link.to_string(),
        };
        self.sync_rows_sent
            .get_or_create(&link)
            .inc_by(rows.max(0) as u64);
        self.sync_bytes_sent
            .get_or_create(&link)
            .inc_by(bytes.max(0) as u64);
    }
}
