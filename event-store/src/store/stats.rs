//! Counts over the whole store.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// What the store holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Events readable (not archived).
    pub events: u64,
    /// Streams with at least one append.
    pub streams: u64,
    /// Snapshots kept.
    pub snapshots: u64,
    /// Events moved to the archive.
    pub archived: u64,
    /// Highest global position written.
    pub last_position: u64,
    /// When the oldest readable event happened.
    pub oldest: Option<DateTime<Utc>>,
    /// When the newest readable event happened.
    pub newest: Option<DateTime<Utc>>,
    /// Readable events per event type.
    pub by_type: BTreeMap<String, u64>,
    /// Events enqueued in the outbox and not yet published.
    pub outbox_pending: u64,
}
