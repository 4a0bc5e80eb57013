//! The event store: one stream of events per aggregate with optimistic concurrency, a
//! store-wide order by global position, snapshots, upcasting and retention.
//!
//! [`EventStore`] is the contract; [`MemoryEventStore`] keeps everything in the process and the
//! `event-store-postgres` crate keeps it in PostgreSQL. Both also implement
//! [`Outbox`](crate::outbox::Outbox), so an append and its publishing are one transaction.

mod error;
mod filter;
mod memory;
mod recorded;
mod retention;
mod snapshot;
mod stats;
mod stream;
#[cfg(feature = "suite")]
pub mod suite;
mod upcast;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use event_bus_core::envelope::EventEnvelope;

pub use error::StoreError;
pub use filter::EventFilter;
pub use memory::MemoryEventStore;
pub use recorded::{AppendOutcome, RecordedEvent};
pub use retention::{RetentionJob, RetentionMode, RetentionReport};
pub use snapshot::{EventStoreExt, Reconstructed, Snapshot};
pub use stats::StoreStats;
pub use stream::{ExpectedVersion, StreamId, stamp};
pub use upcast::{UpcastError, Upcasters};

/// Stores events per aggregate stream and reads them back per stream or store-wide.
///
/// Reads apply the store's [`Upcasters`], so callers see current payload schemas.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Short backend name, such as `memory` or `postgres`.
    fn name(&self) -> &'static str;

    /// Events folded since the last snapshot after which rebuilding a state saves a new one
    /// (`EVENT_STORE_SNAPSHOT_INTERVAL`; 0 turns snapshots off).
    fn snapshot_interval(&self) -> u64;

    /// Appends `events` to `stream` if it is at the `expected` version, all or nothing. Stamps
    /// each event with the stream and its version; fails with [`StoreError::Concurrency`]
    /// when another writer got there first.
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<EventEnvelope>,
    ) -> Result<AppendOutcome, StoreError>;

    /// The events of `stream` from version `from_version` on (versions start at 1), in order,
    /// at most `limit` of them.
    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: Option<usize>,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The version of `stream`: how many events were ever appended to it (0 for none).
    async fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError>;

    /// Up to `limit` events after global position `after_position` that pass `filter`, in
    /// position order.
    async fn read_all(
        &self,
        filter: &EventFilter,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Saves a snapshot; the latest by version is the one used.
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError>;

    /// The snapshot of `stream` with the highest version.
    async fn latest_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError>;

    /// Archives or deletes the events that happened before `cutoff`; returns how many.
    async fn expire_before(
        &self,
        cutoff: DateTime<Utc>,
        mode: RetentionMode,
    ) -> Result<u64, StoreError>;

    /// Deletes the snapshots taken before `cutoff`; returns how many.
    async fn expire_snapshots_before(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Counts over the whole store.
    async fn stats(&self) -> Result<StoreStats, StoreError>;
}
