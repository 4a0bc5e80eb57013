//! Backends by name: [`connect`] builds the bus that `EVENT_BUS_TYPE` selects. Each broker
//! backend sits behind the cargo feature of its name and reads its own variables; the
//! [`registry`] maps names to the backends compiled in.

use std::sync::Arc;

use event_bus_core::{Broker, BusSettings, ConfigError, EventBus};

#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "nats")]
pub mod nats;
#[cfg(feature = "pubsub")]
pub mod pubsub;
#[cfg(feature = "rabbitmq")]
pub mod rabbitmq;
#[cfg(feature = "redis")]
pub mod redis;
pub mod registry;

pub use registry::{BackendError, Connected};

/// Why a bus could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The settings name no usable backend, or the backend's settings are malformed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A variable of the backend has a value it cannot use.
    #[error("invalid settings of the {backend} backend: {source}")]
    Settings {
        /// The backend's name.
        backend: &'static str,
        /// What is wrong.
        source: event_bus_core::BoxError,
    },
    /// The Prometheus exporter could not be started.
    #[cfg(feature = "prometheus")]
    #[error(transparent)]
    Metrics(#[from] event_bus_core::telemetry::prometheus::ExporterError),
    /// The backend's server could not be reached or set up.
    #[error("could not connect the {backend} backend: {source}")]
    Connect {
        /// The backend's name.
        backend: &'static str,
        /// What went wrong.
        source: event_bus_core::BusError,
    },
}

/// Connects the backend that `settings` select, with the dedup store it offers.
pub async fn connect_backend(settings: &BusSettings) -> Result<Connected, ConnectError> {
    let backend = registry::selected(settings)?;
    (backend.connect)(settings)
        .await
        .map_err(|error| match error {
            BackendError::Config(error) => ConnectError::Config(error),
            BackendError::Settings(source) => ConnectError::Settings {
                backend: backend.name,
                source,
            },
            BackendError::Bus(source) => ConnectError::Connect {
                backend: backend.name,
                source,
            },
        })
}

/// Connects the broker that `settings` select.
pub async fn connect_broker(settings: &BusSettings) -> Result<Arc<dyn Broker>, ConnectError> {
    Ok(connect_backend(settings).await?.broker)
}

/// Builds the event bus that `settings` describe. A backend that keeps idempotency keys on its
/// server (Redis Streams) shares them between every process of a consumer group.
///
/// With `EVENT_BUS_METRICS_PORT` set, the Prometheus exporter is started first (feature
/// `prometheus`; without it, a warning says the exporter is not compiled in).
pub async fn connect(settings: BusSettings) -> Result<EventBus, ConnectError> {
    #[cfg(feature = "prometheus")]
    event_bus_core::telemetry::prometheus::start_exporter_from_settings(&settings)?;
    #[cfg(not(feature = "prometheus"))]
    if let Some(port) = settings.metrics_port {
        tracing::warn!(
            port,
            "EVENT_BUS_METRICS_PORT is set, but this build has no Prometheus exporter (cargo feature `prometheus`)"
        );
    }
    let connected = connect_backend(&settings).await?;
    let bus = EventBus::new(connected.broker, settings);
    Ok(match connected.dedup_store {
        Some(store) => bus.with_dedup_store(Some(store)),
        None => bus,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_is_the_default_backend() {
        let bus = connect(BusSettings::default()).await.unwrap();
        assert_eq!(bus.broker().name(), "memory");
    }

    #[tokio::test]
    async fn an_unknown_backend_is_a_clear_error() {
        let settings = BusSettings::from_vars([("EVENT_BUS_TYPE", "carrier-pigeon")]).unwrap();
        let error = connect(settings).await.err().expect("no such backend");
        assert!(
            matches!(error, ConnectError::Config(ConfigError::UnknownBackend { ref name, .. }) if name == "carrier-pigeon"),
            "{error}"
        );
    }
}
