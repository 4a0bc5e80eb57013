//! Which events a store-wide read returns.

use chrono::{DateTime, Utc};

use event_bus_core::envelope::EventEnvelope;

/// Filters of a store-wide read; unset fields match everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Events that happened at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Events that happened before this time.
    pub to: Option<DateTime<Utc>>,
    /// Events of one of these types; empty means every type.
    pub event_types: Vec<String>,
    /// Events of aggregates of this type.
    pub aggregate_type: Option<String>,
    /// Events of the aggregate with this id.
    pub aggregate_id: Option<String>,
}

impl EventFilter {
    /// A filter that matches every event.
    pub fn all() -> Self {
        Self::default()
    }

    /// Events that happened in `[from, to)`.
    #[must_use]
    pub fn between(mut self, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Self {
        self.from = from;
        self.to = to;
        self
    }

    /// Adds an event type to match.
    #[must_use]
    pub fn event_type(mut self, event_type: impl Into<String>) -> Self {
        self.event_types.push(event_type.into());
        self
    }

    /// Events of aggregates of this type.
    #[must_use]
    pub fn aggregate_type(mut self, aggregate_type: impl Into<String>) -> Self {
        self.aggregate_type = Some(aggregate_type.into());
        self
    }

    /// Events of the aggregate with this id.
    #[must_use]
    pub fn aggregate_id(mut self, aggregate_id: impl Into<String>) -> Self {
        self.aggregate_id = Some(aggregate_id.into());
        self
    }

    /// Whether `event` passes the filter.
    pub fn matches(&self, event: &EventEnvelope) -> bool {
        self.from.is_none_or(|from| event.timestamp >= from)
            && self.to.is_none_or(|to| event.timestamp < to)
            && (self.event_types.is_empty() || self.event_types.contains(&event.event_type))
            && self
                .aggregate_type
                .as_ref()
                .is_none_or(|t| *t == event.aggregate_type)
            && self
                .aggregate_id
                .as_ref()
                .is_none_or(|id| *id == event.aggregate_id)
    }
}
