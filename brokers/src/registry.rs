//! Backends by name: each `EVENT_BUS_TYPE` value maps to a backend compiled into this build.

use std::sync::Arc;

use event_bus_core::{
    BoxError, Broker, BusError, BusSettings, ConfigError, DedupStore, InMemoryBroker,
};
use futures::future::BoxFuture;

/// The backend used when `EVENT_BUS_TYPE` is unset.
pub const DEFAULT_BACKEND: &str = "memory";

/// Every backend this crate has, with the cargo feature that compiles it in.
const KNOWN: &[(&str, &str)] = &[
    ("memory", ""),
    ("redis", "redis"),
    ("kafka", "kafka"),
    ("rabbitmq", "rabbitmq"),
    ("pubsub", "pubsub"),
    ("nats", "nats"),
];

/// A connected backend: its broker, and the dedup store it offers for idempotency keys shared
/// by every process (`None`: the bus keeps them in process memory).
pub struct Connected {
    /// The broker.
    pub broker: Arc<dyn Broker>,
    /// A dedup store kept on the broker's server.
    pub dedup_store: Option<Arc<dyn DedupStore>>,
}

impl Connected {
    /// A broker with no dedup store of its own.
    pub fn broker(broker: Arc<dyn Broker>) -> Self {
        Self {
            broker,
            dedup_store: None,
        }
    }
}

/// Why a backend could not be connected.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Its settings are missing or malformed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A variable of its own has a value it cannot use.
    #[error(transparent)]
    Settings(BoxError),
    /// Its server could not be reached or set up.
    #[error(transparent)]
    Bus(#[from] BusError),
}

impl BackendError {
    /// A backend's own settings error.
    pub fn settings(error: impl Into<BoxError>) -> Self {
        Self::Settings(error.into())
    }
}

/// Connects a backend from the bus settings; it reads its own variables from `settings.source`.
pub type ConnectFn = for<'a> fn(&'a BusSettings) -> BoxFuture<'a, Result<Connected, BackendError>>;

/// A backend compiled into this build.
pub struct Backend {
    /// The value of `EVENT_BUS_TYPE` that selects it.
    pub name: &'static str,
    /// The environment variables it reads, besides the bus-wide ones.
    pub variables: &'static [&'static str],
    /// Connects it.
    pub connect: ConnectFn,
}

/// The variables the in-memory backend reads.
const MEMORY_VARIABLES: &[&str] = &["MEMORY_RETAINED_MESSAGES"];

#[derive(serde::Deserialize)]
struct MemoryVariables {
    memory_retained_messages: Option<usize>,
}

fn connect_memory(settings: &BusSettings) -> BoxFuture<'_, Result<Connected, BackendError>> {
    Box::pin(async {
        let vars: MemoryVariables = settings.source.read()?;
        let retained = vars
            .memory_retained_messages
            .unwrap_or(event_bus_core::memory::DEFAULT_RETAINED_MESSAGES);
        Ok(Connected::broker(Arc::new(InMemoryBroker::with_retention(
            retained,
        ))))
    })
}

/// The backends compiled into this build, the default first.
pub const BACKENDS: &[Backend] = &[
    Backend {
        name: DEFAULT_BACKEND,
        variables: MEMORY_VARIABLES,
        connect: connect_memory,
    },
    #[cfg(feature = "redis")]
    crate::redis::BACKEND,
    #[cfg(feature = "kafka")]
    crate::kafka::BACKEND,
    #[cfg(feature = "rabbitmq")]
    crate::rabbitmq::BACKEND,
    #[cfg(feature = "pubsub")]
    crate::pubsub::BACKEND,
    #[cfg(feature = "nats")]
    crate::nats::BACKEND,
];

/// Names of the backends compiled in, comma-separated.
fn available() -> String {
    BACKENDS
        .iter()
        .map(|b| b.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The backend `name` selects; an unknown or not-compiled-in name is an error listing what
/// this build has.
pub fn backend(name: &str) -> Result<&'static Backend, ConfigError> {
    if let Some(backend) = BACKENDS.iter().find(|b| b.name == name) {
        return Ok(backend);
    }
    Err(match KNOWN.iter().find(|(known, _)| *known == name) {
        Some((_, feature)) => ConfigError::BackendNotCompiled {
            name: name.to_owned(),
            feature,
            available: available(),
        },
        None => ConfigError::UnknownBackend {
            name: name.to_owned(),
            available: available(),
        },
    })
}

/// The backend the settings select (`EVENT_BUS_TYPE`, [`DEFAULT_BACKEND`] when unset).
pub fn selected(settings: &BusSettings) -> Result<&'static Backend, ConfigError> {
    backend(settings.backend.as_deref().unwrap_or(DEFAULT_BACKEND))
}

/// Every environment variable the bus and the backends compiled in read.
pub fn variables() -> Vec<&'static str> {
    let mut all = event_bus_core::config::VARIABLES.to_vec();
    all.extend(BACKENDS.iter().flat_map(|b| b.variables.iter().copied()));
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_known() {
        for (i, backend) in BACKENDS.iter().enumerate() {
            assert!(KNOWN.iter().any(|(name, _)| *name == backend.name));
            assert!(BACKENDS[i + 1..].iter().all(|b| b.name != backend.name));
        }
    }

    #[test]
    fn an_unknown_name_lists_what_this_build_has() {
        let error = backend("carrier-pigeon").err().expect("unknown");
        assert!(
            matches!(error, ConfigError::UnknownBackend { ref name, .. } if name == "carrier-pigeon")
        );
        assert_eq!(
            error.to_string(),
            format!(
                "unknown EVENT_BUS_TYPE `carrier-pigeon`; this build has: {}",
                available()
            )
        );
        assert!(available().starts_with("memory"));
    }

    #[test]
    fn a_backend_left_out_of_the_build_names_its_feature() {
        let Some((missing, feature)) = KNOWN
            .iter()
            .find(|(name, _)| BACKENDS.iter().all(|b| b.name != *name))
        else {
            return eprintln!("skipped: every backend is compiled in");
        };
        let error = backend(missing).err().expect("not compiled in");
        assert_eq!(
            error.to_string(),
            format!(
                "EVENT_BUS_TYPE `{missing}` is not available in this build (enable cargo feature `{feature}` of event-bus-brokers); this build has: {}",
                available()
            )
        );
    }
}
