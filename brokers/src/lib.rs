//! Backends by name: [`connect`] builds the bus that `EVENT_BUS_TYPE` selects. Each broker
//! backend sits behind the cargo feature of its name and reads its own variables; the
//! [`registry`] maps names to the backends compiled in.

use std::sync::Arc;

use event_bus_core::{Broker, BusSettings, ConfigError, DedupStore, EventBus, MemoryDedupStore};

#[cfg(any(feature = "redis", feature = "nats", feature = "rabbitmq"))]
mod access;
#[cfg(any(feature = "redis", feature = "nats"))]
mod crypto_provider;
mod dedup;
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

pub use dedup::DedupStoreChoice;

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
    /// `EVENT_BUS_DEDUP_STORE` names a store this crate does not build.
    #[error("EVENT_BUS_DEDUP_STORE={store} is not built by event_bus_brokers::connect: {how}")]
    DedupStoreElsewhere {
        /// The store asked for.
        store: &'static str,
        /// How to get it.
        how: &'static str,
    },
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

/// Builds the event bus that `settings` describe, deduplicating where `EVENT_BUS_DEDUP_STORE`
/// says: unset, the backend's own store where it has one (Redis Streams: shared by every
/// process of a consumer group), process memory elsewhere; `memory`; `redis` (on any backend,
/// at `REDIS_EVENT_URL`, feature `redis`). `postgres` is an error here, as this crate does
/// not link PostgreSQL: `event_store_postgres::connect_bus` builds that bus.
///
/// With `EVENT_BUS_METRICS_PORT` set, the Prometheus exporter is started first (feature
/// `prometheus`; without it, a warning says the exporter is not compiled in).
pub async fn connect(settings: BusSettings) -> Result<EventBus, ConnectError> {
    start_metrics(&settings)?;
    let connected = connect_backend(&settings).await?;
    let store: Option<Arc<dyn DedupStore>> = match DedupStoreChoice::from_settings(&settings)? {
        None => connected.dedup_store,
        Some(DedupStoreChoice::Memory) => Some(Arc::new(MemoryDedupStore::with_max_keys(
            settings.idempotency_max_keys,
        ))),
        Some(DedupStoreChoice::Redis) => match connected.dedup_store {
            Some(store) if connected.broker.name() == "redis" => Some(store),
            _ => Some(redis_dedup_store(&settings).await?),
        },
        Some(DedupStoreChoice::Postgres) => {
            return Err(ConnectError::DedupStoreElsewhere {
                store: "postgres",
                how: "build the bus with event_store_postgres::connect_bus (feature `bus`), or plug a PgDedupStore in with EventBus::with_dedup_store",
            });
        }
    };
    let bus = EventBus::new(connected.broker, settings);
    Ok(match store {
        Some(store) => bus.with_dedup_store(Some(store)),
        None => bus,
    })
}

/// Builds the event bus that `settings` describe, deduplicating with `store` whatever
/// `EVENT_BUS_DEDUP_STORE` says (how a store this crate does not know is plugged in).
pub async fn connect_with_dedup_store(
    settings: BusSettings,
    store: Arc<dyn DedupStore>,
) -> Result<EventBus, ConnectError> {
    start_metrics(&settings)?;
    let connected = connect_backend(&settings).await?;
    Ok(EventBus::new(connected.broker, settings).with_dedup_store(Some(store)))
}

/// A Redis dedup store at `REDIS_EVENT_URL`, keys under `{topic prefix}-dedup:`.
#[cfg(feature = "redis")]
async fn redis_dedup_store(settings: &BusSettings) -> Result<Arc<dyn DedupStore>, ConnectError> {
    let options = crate::redis::RedisOptions::from_settings(settings)?;
    let prefix = format!("{}-dedup", settings.topic_prefix);
    let store = crate::redis::RedisDedupStore::connect_with(&options, &prefix)
        .await
        .map_err(|source| ConnectError::Connect {
            backend: "redis",
            source,
        })?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "redis"))]
async fn redis_dedup_store(_: &BusSettings) -> Result<Arc<dyn DedupStore>, ConnectError> {
    Err(ConnectError::DedupStoreElsewhere {
        store: "redis",
        how: "enable cargo feature `redis` of event-bus-brokers",
    })
}

fn start_metrics(settings: &BusSettings) -> Result<(), ConnectError> {
    #[cfg(feature = "prometheus")]
    event_bus_core::telemetry::prometheus::start_exporter_from_settings(settings)?;
    #[cfg(not(feature = "prometheus"))]
    if let Some(port) = settings.metrics_port {
        tracing::warn!(
            port,
            "EVENT_BUS_METRICS_PORT is set, but this build has no Prometheus exporter (cargo feature `prometheus`)"
        );
    }
    Ok(())
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
    async fn a_postgres_dedup_store_is_refused_here_with_where_to_get_it() {
        let settings = BusSettings::from_vars([("EVENT_BUS_DEDUP_STORE", "postgres")]).unwrap();
        let error = connect(settings).await.err().expect("not built here");
        assert!(
            matches!(
                error,
                ConnectError::DedupStoreElsewhere {
                    store: "postgres",
                    ..
                }
            ),
            "{error}"
        );
        assert!(
            error
                .to_string()
                .contains("event_store_postgres::connect_bus")
        );
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
