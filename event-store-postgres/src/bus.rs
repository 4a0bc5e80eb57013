//! [`connect_bus`]: the bus `EVENT_BUS_TYPE` selects, with idempotency keys in PostgreSQL when
//! `EVENT_BUS_DEDUP_STORE=postgres` (event-bus-brokers does not link PostgreSQL, so this crate
//! plugs its store in).

use std::sync::Arc;

use event_bus_brokers::{ConnectError, DedupStoreChoice};
use event_bus_core::{BusSettings, ConfigError, EventBus};
use event_store::StoreSettings;
use event_store::store::StoreError;

use crate::store::PgEventStore;

/// Why the bus could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConnectBusError {
    /// The store's settings are malformed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The dedup store's database could not be reached or set up.
    #[error("dedup store: {0}")]
    Store(#[from] StoreError),
    /// The backend could not be connected.
    #[error(transparent)]
    Connect(#[from] ConnectError),
}

/// Builds the bus `settings` describe, as `event_bus_brokers::connect` does, except that
/// `EVENT_BUS_DEDUP_STORE=postgres` keeps idempotency keys in the `dedup_keys` table of the
/// event store's database and schema (`DATABASE_URL`, `EVENT_STORE_SCHEMA`).
pub async fn connect_bus(settings: BusSettings) -> Result<EventBus, ConnectBusError> {
    if DedupStoreChoice::from_settings(&settings)? != Some(DedupStoreChoice::Postgres) {
        return Ok(event_bus_brokers::connect(settings).await?);
    }
    let store = PgEventStore::from_settings(&StoreSettings::from_settings(&settings)?).await?;
    let dedup = Arc::new(store.dedup_store());
    Ok(event_bus_brokers::connect_with_dedup_store(settings, dedup).await?)
}
