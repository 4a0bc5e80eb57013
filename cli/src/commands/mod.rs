//! The commands, one file each, and what they share: settings and connections.

pub mod dlq;
pub mod publish;
pub mod replay;
pub mod sagas;
pub mod setup;
pub mod store;
pub mod tail;

use event_bus_core::{BusSettings, EventBus};
use event_store::StoreSettings;
use event_store_postgres::PgEventStore;

use crate::error::CliError;

/// Consumer group the CLI reads the dead-letter topic with.
pub const DEAD_LETTER_GROUP: &str = "eventbus-dead-letters";

/// Settings and how to reach the backend and the store.
pub struct Context {
    /// Settings from the environment.
    pub settings: BusSettings,
    store: StoreSettings,
    schema: String,
}

impl Context {
    /// A context for these settings and store schema.
    pub fn new(settings: BusSettings, schema: String) -> Result<Self, CliError> {
        let store = StoreSettings::from_settings(&settings)?;
        Ok(Self {
            settings,
            store,
            schema,
        })
    }

    /// Connects the backend EVENT_BUS_TYPE names.
    pub async fn bus(&self) -> Result<EventBus, CliError> {
        Ok(event_bus_brokers::connect(self.settings.clone()).await?)
    }

    /// Connects the event store at DATABASE_URL.
    pub async fn store(&self) -> Result<PgEventStore, CliError> {
        Ok(
            PgEventStore::connect(&self.store.database_url, &self.schema)
                .await?
                .with_snapshot_interval(self.store.snapshot_interval),
        )
    }
}
