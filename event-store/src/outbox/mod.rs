//! The transactional outbox: an append and the enqueueing of its events for publishing are one
//! transaction, and a relay publishes enqueued events at least once, marking them published only
//! after the broker confirmed. A crash between the store and the broker loses nothing. Several
//! relays share one outbox by claiming entries for a lease, each aggregate's entries in order.

mod relay;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::store::{AppendOutcome, ExpectedVersion, StoreError, StreamId};
use event_bus_core::envelope::EventEnvelope;

pub use relay::{OutboxRelay, RelayReport};

/// An event waiting in the outbox, or already published.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxEntry {
    /// Outbox order, starting at 1.
    pub id: u64,
    /// The event to publish.
    pub envelope: EventEnvelope,
    /// When it was enqueued.
    pub enqueued_at: DateTime<Utc>,
    /// Failed publish attempts so far.
    pub attempts: u32,
    /// The last publish error.
    pub last_error: Option<String>,
    /// When the broker confirmed it; `None` while pending.
    pub published_at: Option<DateTime<Utc>>,
}

/// A store with an outbox beside it.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Appends like [`EventStore::append`](crate::store::EventStore::append) and enqueues the
    /// stored events for publishing, in one transaction.
    async fn append_and_enqueue(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<EventEnvelope>,
    ) -> Result<AppendOutcome, StoreError>;

    /// Up to `limit` unpublished entries, oldest first.
    async fn pending(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError>;

    /// Claims up to `limit` unpublished entries for `relay` until `lease` has passed, oldest
    /// first. Entries another relay holds an unexpired claim on are left out, and so is every
    /// entry of their aggregates, so each aggregate's entries are published in order.
    async fn claim(
        &self,
        relay: Uuid,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<OutboxEntry>, StoreError>;

    /// Gives up `relay`'s claims on these entries, so any relay may take them at once.
    async fn release(&self, relay: Uuid, ids: &[u64]) -> Result<(), StoreError>;

    /// Marks entries published.
    async fn mark_published(&self, ids: &[u64]) -> Result<(), StoreError>;

    /// Counts a failed publish attempt of an entry.
    async fn record_failure(&self, id: u64, error: &str) -> Result<(), StoreError>;
}
