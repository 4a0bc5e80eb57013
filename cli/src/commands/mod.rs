//! The commands, one file each, and what they share: settings and connections.

pub mod dlq;
pub mod publish;
pub mod replay;
pub mod sagas;
pub mod setup;
pub mod store;
pub mod tail;

use event_bus_core::{BusSettings, EventBus, SubscriptionConfig};
use event_store::StoreSettings;
use event_store_postgres::PgEventStore;

use crate::error::CliError;

/// Settings and how to reach the backend and the store.
pub struct Context {
    /// Settings from the environment.
    pub settings: BusSettings,
    store: StoreSettings,
    schema: String,
}

impl Context {
    /// The dead-letter topic, read by the group that keeps dead letters
    /// (`DEAD_LETTER_SUBSCRIPTION`).
    pub fn dead_letters(&self) -> SubscriptionConfig {
        SubscriptionConfig::new(
            &self.settings.dead_letter_topic,
            &self.settings.dead_letter_subscription,
        )
    }

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
