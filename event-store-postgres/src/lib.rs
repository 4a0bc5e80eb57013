//! The event store, transactional outbox and parked dead-letter store in PostgreSQL (`sqlx`).
//!
//! Every table lives in one schema of the caller's choice (default `event_store`), created on
//! connect. Appends run in a transaction holding a per-schema advisory lock, so global
//! positions are assigned in commit order and a reader following positions never skips an
//! event committed later with a lower position; `(aggregate_type, aggregate_id, version)` is
//! unique as a second guard against a double append.

mod error;
mod outbox;
mod parked;
mod schema;
mod store;

pub use parked::PgParkedStore;
pub use schema::{DEFAULT_SCHEMA, Schema};
pub use store::PgEventStore;
