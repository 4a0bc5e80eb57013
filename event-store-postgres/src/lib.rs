//! The event store, transactional outbox and parked dead-letter store in PostgreSQL (`sqlx`).
//!
//! Every table lives in one schema of the caller's choice (default `event_store`), created on
//! connect. Appends run in a transaction holding a per-schema advisory lock, so global
//! positions are assigned in commit order and a reader following positions never skips an
//! event committed later with a lower position; `(aggregate_type, aggregate_id, version)` is
//! unique as a second guard against a double append.
//!
//! [`PgDedupStore`] keeps the bus's idempotency keys in the same database (the `dedup_keys`
//! table), shared by every process; [`connect_bus`] (feature `bus`) builds the bus with it when
//! `EVENT_BUS_DEDUP_STORE=postgres`.

#[cfg(feature = "bus")]
mod bus;
mod dedup;
mod error;
mod outbox;
mod parked;
mod schema;
mod store;

#[cfg(feature = "bus")]
pub use bus::{ConnectBusError, connect_bus};
pub use dedup::PgDedupStore;
pub use parked::PgParkedStore;
pub use schema::{DEFAULT_SCHEMA, Schema};
pub use store::PgEventStore;
