//! Observability: metrics through the `metrics` facade (and a Prometheus exporter with feature
//! `prometheus`), and W3C trace context across the broker.

pub mod metrics;
#[cfg(feature = "prometheus")]
pub mod prometheus;
pub mod trace_context;
