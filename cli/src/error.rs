//! Everything that can make a command fail, each printed as one line.

use event_bus_brokers::ConnectError;
use event_bus_core::dead_letter::{DeadLetterError, ParkedStoreError};
use event_bus_core::{BusError, ConfigError};
use event_store::StoreError;
use event_store::replay::ReplayError;
use uuid::Uuid;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The settings are unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The backend could not be reached.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The backend failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The event store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The parked dead-letter store failed.
    #[error(transparent)]
    Parked(#[from] ParkedStoreError),
    /// A dead letter could not be handled.
    #[error(transparent)]
    DeadLetter(#[from] DeadLetterError),
    /// A replay stopped early.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// The saga settings are unusable.
    #[error(transparent)]
    SagaSettings(#[from] event_bus_sagas::SettingsError),
    /// The saga store failed.
    #[error(transparent)]
    SagaStore(#[from] event_bus_sagas::RepositoryError),
    /// Standard input or output failed.
    #[error("input/output: {0}")]
    Io(#[from] std::io::Error),
    /// The input is not JSON.
    #[error("the input is not valid JSON: {0}")]
    InvalidJson(serde_json::Error),
    /// A payload was given without an event type.
    #[error(
        "the input is not a CloudEvents envelope; give the event type with --type to publish it as a payload"
    )]
    MissingEventType,
    /// `--aggregate` is not `TYPE:ID`.
    #[error("--aggregate must be TYPE:ID, got `{0}`")]
    InvalidAggregate(String),
    /// A dead-letter command was not told which dead letters.
    #[error("say which dead letters: an id, --all, or a filter (--reason, --topic, --type)")]
    NoSelection,
    /// No parked dead letter has the id.
    #[error("no parked dead letter with id {0}")]
    NotParked(Uuid),
}
