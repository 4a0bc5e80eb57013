//! What the store hands back: events with their global position, and the outcome of an append.

use chrono::{DateTime, Utc};

use event_bus_core::envelope::EventEnvelope;

/// A stored event: the envelope, its global position and when it was stored.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedEvent {
    /// Position in the store-wide order, starting at 1; later commits have higher positions.
    pub position: u64,
    /// When the store wrote it.
    pub recorded_at: DateTime<Utc>,
    /// The event, with its stream and version stamped.
    pub envelope: EventEnvelope,
}

/// The outcome of a successful append.
#[derive(Clone, Debug, PartialEq)]
pub struct AppendOutcome {
    /// The stream's version after the append.
    pub version: u64,
    /// The stored events, in order.
    pub events: Vec<RecordedEvent>,
}
