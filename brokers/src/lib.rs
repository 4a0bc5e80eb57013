//! Backends by name: [`connect`] builds the bus that `EVENT_BUS_TYPE` selects. Each broker
//! backend sits behind the cargo feature of its name.

use std::sync::Arc;

use event_bus_core::{
    Broker, BusError, BusSettings, BusType, ConfigError, EventBus, InMemoryBroker,
};

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

/// Backends compiled into this build.
pub const AVAILABLE: &[BusType] = &[
    BusType::Memory,
    #[cfg(feature = "redis")]
    BusType::Redis,
    #[cfg(feature = "kafka")]
    BusType::Kafka,
    #[cfg(feature = "rabbitmq")]
    BusType::RabbitMq,
    #[cfg(feature = "pubsub")]
    BusType::PubSub,
];

/// Why a bus could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The settings name no usable backend.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The Prometheus exporter could not be started.
    #[cfg(feature = "prometheus")]
    #[error(transparent)]
    Metrics(#[from] event_bus_core::telemetry::prometheus::ExporterError),
    /// The backend's server could not be reached or set up.
    #[error("could not connect the {backend} backend: {source}")]
    Connect {
        /// The backend.
        backend: BusType,
        /// What went wrong.
        source: BusError,
    },
}

/// Connects the broker that `settings.bus_type` names.
pub async fn connect_broker(settings: &BusSettings) -> Result<Arc<dyn Broker>, ConnectError> {
    let backend = settings.bus_type;
    let connected: Result<Arc<dyn Broker>, BusError> = match backend {
        BusType::Memory => Ok(Arc::new(InMemoryBroker::new())),
        #[cfg(feature = "redis")]
        BusType::Redis => redis::connect(settings).await,
        #[cfg(feature = "kafka")]
        BusType::Kafka => kafka::connect(settings).await,
        #[cfg(feature = "rabbitmq")]
        BusType::RabbitMq => rabbitmq::connect(settings).await,
        #[cfg(feature = "pubsub")]
        BusType::PubSub => pubsub::connect(settings).await,
        #[allow(unreachable_patterns)]
        _ => {
            return Err(ConfigError::BackendNotCompiled {
                backend,
                available: AVAILABLE
                    .iter()
                    .map(|b| b.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }
            .into());
        }
    };
    connected.map_err(|source| ConnectError::Connect { backend, source })
}

/// Builds the event bus that `settings` describe. On Redis Streams, idempotency keys are kept
/// in Redis under `{topic prefix}-dedup:`, so every process of a consumer group shares them.
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
    let broker = connect_broker(&settings).await?;
    #[cfg(feature = "redis")]
    if settings.bus_type == BusType::Redis && settings.redis_channel_prefix.is_none() {
        let prefix = format!("{}-dedup", settings.topic_prefix);
        let store = redis::RedisDedupStore::connect(&settings.redis_url, &prefix)
            .await
            .map_err(|source| ConnectError::Connect {
                backend: BusType::Redis,
                source,
            })?;
        return Ok(EventBus::new(broker, settings).with_dedup_store(Some(Arc::new(store))));
    }
    Ok(EventBus::new(broker, settings))
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
    async fn a_backend_left_out_of_the_build_is_a_clear_error() {
        let Some(missing) = BusType::ALL.into_iter().find(|b| !AVAILABLE.contains(b)) else {
            return eprintln!("skipped: every backend is compiled in");
        };
        let settings = BusSettings::from_vars([("EVENT_BUS_TYPE", missing.as_str())]).unwrap();
        let error = connect(settings)
            .await
            .err()
            .expect("the backend is not compiled in");
        assert!(matches!(
            error,
            ConnectError::Config(ConfigError::BackendNotCompiled { backend, .. }) if backend == missing
        ));
        assert!(
            error.to_string().starts_with(&format!(
                "EVENT_BUS_TYPE `{missing}` is not available in this build (enable cargo feature `{missing}` of event-bus-brokers); available: memory"
            )),
            "{error}"
        );
    }
}
