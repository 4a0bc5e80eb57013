//! The Prometheus exporter: the bus's metrics served for scraping on `127.0.0.1` only.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Mutex;

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder};

use crate::config::BusSettings;

/// Bucket bounds, in seconds, of the publish and handle latency histograms.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The exporter could not be started.
#[derive(Debug, thiserror::Error)]
#[error("could not start the Prometheus exporter on {address}: {source}")]
pub struct ExporterError {
    /// Where it was to listen.
    pub address: SocketAddr,
    /// Why it failed.
    #[source]
    pub source: BuildError,
}

/// Where the exporter of this process listens, once started.
static STARTED: Mutex<Option<SocketAddr>> = Mutex::new(None);

/// Serves the metrics at `http://127.0.0.1:{port}/` (any path) and installs the exporter as
/// the process's metrics recorder. Call it inside a Tokio runtime; once per process (later
/// calls return the address of the first).
pub fn start_exporter(port: u16) -> Result<SocketAddr, ExporterError> {
    let mut started = STARTED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(address) = *started {
        return Ok(address);
    }
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    PrometheusBuilder::new()
        .with_http_listener(address)
        .set_buckets_for_metric(Matcher::Suffix("_duration_seconds".into()), LATENCY_BUCKETS)
        .and_then(PrometheusBuilder::install)
        .map_err(|source| ExporterError { address, source })?;
    tracing::info!(%address, "Prometheus metrics exporter listening");
    *started = Some(address);
    Ok(address)
}

/// Starts the exporter when `EVENT_BUS_METRICS_PORT` is set; `None` when it is not.
pub fn start_exporter_from_settings(
    settings: &BusSettings,
) -> Result<Option<SocketAddr>, ExporterError> {
    settings.metrics_port.map(start_exporter).transpose()
}
