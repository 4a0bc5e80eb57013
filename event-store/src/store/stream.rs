//! Streams: one per aggregate, addressed by aggregate type and id, and the version an append expects.

use std::fmt;

use event_bus_core::envelope::EventEnvelope;

/// The stream of one aggregate.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId {
    /// Aggregate type, such as `conversation`.
    pub aggregate_type: String,
    /// Aggregate id.
    pub aggregate_id: String,
}

impl StreamId {
    /// The stream of aggregate `aggregate_id` of type `aggregate_type`.
    pub fn new(aggregate_type: impl Into<String>, aggregate_id: impl Into<String>) -> Self {
        Self {
            aggregate_type: aggregate_type.into(),
            aggregate_id: aggregate_id.into(),
        }
    }

    /// The stream an envelope's aggregate fields name.
    pub fn of(event: &EventEnvelope) -> Self {
        Self::new(event.aggregate_type.clone(), event.aggregate_id.clone())
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.aggregate_type, self.aggregate_id)
    }
}

/// The stream version an append requires; the version is the number of events in the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append whatever the version is.
    Any,
    /// The stream must have no events yet.
    NoStream,
    /// The stream must be at exactly this version.
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream at `actual` satisfies this expectation.
    pub fn matches(self, actual: u64) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => actual == 0,
            Self::Exact(version) => version == actual,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any version"),
            Self::NoStream => f.write_str("no stream"),
            Self::Exact(version) => write!(f, "version {version}"),
        }
    }
}

/// Stamps the stream and consecutive versions after `current` on the events of an append.
pub fn stamp(stream: &StreamId, current: u64, events: &mut [EventEnvelope]) {
    for (offset, event) in (1u64..).zip(events.iter_mut()) {
        event.aggregate_type.clone_from(&stream.aggregate_type);
        event.aggregate_id.clone_from(&stream.aggregate_id);
        event.aggregate_version = current + offset;
    }
}
