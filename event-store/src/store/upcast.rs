//! Upcasting: old payload schemas rewritten to the current one when events are read.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use event_bus_core::envelope::EventEnvelope;

/// An upcaster could not rewrite an event's payload.
#[derive(Debug, thiserror::Error)]
#[error("upcasting `{event_type}` from schema version {from_version} failed: {reason}")]
pub struct UpcastError {
    /// The event type.
    pub event_type: String,
    /// The schema version it had.
    pub from_version: u32,
    /// What was wrong.
    pub reason: String,
}

type UpcastFn = dyn Fn(serde_json::Value) -> Result<serde_json::Value, String> + Send + Sync;

/// Payload rewrites per event type and schema version; each lifts a payload by one version.
#[derive(Clone, Default)]
pub struct Upcasters {
    steps: HashMap<(String, u32), Arc<UpcastFn>>,
}

impl fmt::Debug for Upcasters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upcasters")
            .field("steps", &self.steps.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Upcasters {
    /// No upcasting.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the rewrite of `event_type` payloads from `from_version` to `from_version + 1`.
    #[must_use]
    pub fn register(
        mut self,
        event_type: impl Into<String>,
        from_version: u32,
        step: impl Fn(serde_json::Value) -> Result<serde_json::Value, String> + Send + Sync + 'static,
    ) -> Self {
        self.steps
            .insert((event_type.into(), from_version), Arc::new(step));
        self
    }

    /// Whether no rewrite is registered.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Lifts the event's payload through every registered step from its schema version on.
    pub fn upcast(&self, mut event: EventEnvelope) -> Result<EventEnvelope, UpcastError> {
        while let Some(step) = self
            .steps
            .get(&(event.event_type.clone(), event.schema_version))
        {
            let payload = std::mem::take(&mut event.payload);
            event.payload = step(payload).map_err(|reason| UpcastError {
                event_type: event.event_type.clone(),
                from_version: event.schema_version,
                reason,
            })?;
            event.schema_version += 1;
        }
        Ok(event)
    }
}
