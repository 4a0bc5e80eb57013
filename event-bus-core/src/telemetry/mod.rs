//! Observability: metrics through the `metrics` facade (and a Prometheus exporter with feature
//! `prometheus`), W3C trace context across the broker, and JSON or text logs.

pub mod logging;
pub mod metrics;
#[cfg(feature = "prometheus")]
pub mod prometheus;
pub mod trace_context;
