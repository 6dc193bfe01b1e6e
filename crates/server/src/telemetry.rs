//! Logs (tracing: JSON lines when not on a terminal) and metrics (a
//! Prometheus recorder rendered by our own `/metrics` route).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{Config, LogFormat};

pub const HTTP_REQUESTS: &str = "mailwright_http_requests_total";
pub const HTTP_REQUEST_DURATION: &str = "mailwright_http_request_duration_seconds";
pub const INTEGRATIONS: &str = "mailwright_integrations";

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTarget {
    /// The service's own output (`serve`, `migrate`).
    Stdout,
    /// Commands whose standard output is their result (`admin ...`).
    Stderr,
}

/// Install the global log subscriber. Called once, by the CLI; tests leave
/// logging alone unless they capture it.
pub fn init_logging(config: &Config, target: LogTarget) {
    let writer = move || -> Box<dyn std::io::Write> {
        match target {
            LogTarget::Stdout => Box::new(std::io::stdout()),
            LogTarget::Stderr => Box::new(std::io::stderr()),
        }
    };
    // The filter was validated with the configuration.
    let filter = EnvFilter::try_new(&config.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match config.log_format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(writer),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(tracing_subscriber::fmt::layer().with_writer(writer))
            .try_init(),
    };
    if installed.is_err() {
        tracing::debug!("a log subscriber was already installed");
    }
}

/// The process-wide metrics recorder (installed on first use, so several
/// applications in one test process share it).
pub fn metrics() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(HTTP_REQUEST_DURATION.to_owned()),
                &[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    30.0,
                ],
            )
            .expect("bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder was installed first; /metrics will be empty");
        }
        metrics::describe_counter!(
            HTTP_REQUESTS,
            "HTTP requests answered, by method, route and status."
        );
        metrics::describe_gauge!(
            INTEGRATIONS,
            "Connected accounts, by status, across all workspaces."
        );
        metrics::describe_counter!(
            engine::vault::TOKEN_REFRESHES,
            "OAuth token refreshes, by outcome (success, invalid_grant, unavailable, rejected)."
        );
        metrics::describe_histogram!(
            HTTP_REQUEST_DURATION,
            metrics::Unit::Seconds,
            "Time to answer HTTP requests, by method, route and status."
        );
        handle
    })
}
