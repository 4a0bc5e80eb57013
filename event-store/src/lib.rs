//! Event sourcing on top of the bus: the event store (streams per aggregate with optimistic
//! concurrency, snapshots, upcasting, retention), the transactional outbox and its relay, and
//! replay. The bus runtime does not depend on it.
//!
//! [`MemoryEventStore`] keeps everything in the process; the `event-store-postgres` crate
//! keeps it in PostgreSQL. The `suite` feature adds the suite every store runs
//! ([`event_store_tests!`]).

pub mod outbox;
pub mod replay;
mod settings;
pub mod store;

pub use settings::{StoreSettings, VARIABLES};
pub use store::{
    EventStore, EventStoreExt, ExpectedVersion, MemoryEventStore, StoreError, StreamId,
};
