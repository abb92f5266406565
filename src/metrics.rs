//! Prometheus metrics through the `metrics` facade. One recorder per process, installed on
//! first use, so several in-process servers (as in tests) share it.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder if it is not installed yet, and returns its handle.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("http_request_duration_seconds".into()),
                    &[
                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    ],
                )
                .ok()?
                .set_buckets_for_metric(
                    Matcher::Full("sweep_duration_seconds".into()),
                    &[
                        0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                    ],
                )
                .ok()?;
            builder.install_recorder().ok()
        })
        .as_ref()
}

/// Counts a handled request and its latency by method, route pattern and status.
pub fn record_request(method: &str, route: &str, status: u16, seconds: f64) {
    let labels = [
        ("method", method.to_owned()),
        ("route", route.to_owned()),
        ("status", status.to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(seconds);
}

/// Records how long one run of a background sweep took (`missed_check_ins`: everyone due
/// reviewed; `escalations`: every due alert escalated).
pub fn record_sweep(sweep: &'static str, seconds: f64) {
    metrics::histogram!("sweep_duration_seconds", "sweep" => sweep).record(seconds);
}

/// Records the pool's state just before a scrape.
pub fn record_pool(max: u32, connections: u32, idle: u32) {
    metrics::gauge!("db_pool_max_connections").set(f64::from(max));
    metrics::gauge!("db_pool_connections").set(f64::from(connections));
    metrics::gauge!("db_pool_idle_connections").set(f64::from(idle));
}

/// Renders the Prometheus text exposition.
pub fn render() -> String {
    handle().map(PrometheusHandle::render).unwrap_or_default()
}
