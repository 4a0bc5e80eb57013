//! Backends by name: [`connect`] builds the bus that `EVENT_BUS_TYPE` selects.

use std::sync::Arc;

use event_bus_core::{Broker, BusSettings, BusType, ConfigError, EventBus, InMemoryBroker};

/// Backends compiled into this build.
pub const AVAILABLE: &[BusType] = &[BusType::Memory];

/// Connects the broker that `settings.bus_type` names.
pub async fn connect_broker(settings: &BusSettings) -> Result<Arc<dyn Broker>, ConfigError> {
    match settings.bus_type {
        BusType::Memory => Ok(Arc::new(InMemoryBroker::new())),
        backend => Err(ConfigError::BackendNotCompiled {
            backend,
            available: AVAILABLE
                .iter()
                .map(|b| b.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Builds the event bus that `settings` describe.
pub async fn connect(settings: BusSettings) -> Result<EventBus, ConfigError> {
    let broker = connect_broker(&settings).await?;
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
        let settings = BusSettings::from_vars([("EVENT_BUS_TYPE", "kafka")]).unwrap();
        let error = connect(settings)
            .await
            .err()
            .expect("kafka is not compiled in");
        assert_eq!(
            error.to_string(),
            "EVENT_BUS_TYPE `kafka` is not available in this build (enable cargo feature `kafka` of event-bus-brokers); available: memory"
        );
    }
}
