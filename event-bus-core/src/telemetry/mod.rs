//! Observability: metrics through the `metrics` facade (and a Prometheus exporter with feature
//! `prometheus`), W3C trace context across the broker, and JSON or text logs (feature
//! `logging`). Installing a log subscriber or an exporter is left to the application.

#[cfg(feature = "logging")]
pub mod logging;
pub mod metrics;
#[cfg(feature = "prometheus")]
pub mod prometheus;
pub mod trace_context;
