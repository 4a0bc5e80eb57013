//! Observability: metrics through the `metrics` facade (and a Prometheus exporter with feature
//! `prometheus`).

pub mod metrics;
#[cfg(feature = "prometheus")]
pub mod prometheus;
