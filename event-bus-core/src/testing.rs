//! Test harness: a handler that records what it handled and lets a test wait for it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::envelope::EventEnvelope;
use crate::handler::{Handler, HandlerError};

/// Records every event it handles; clones share the record.
#[derive(Clone, Default)]
pub struct Recorder {
    inner: Arc<RecorderInner>,
}

#[derive(Default)]
struct RecorderInner {
    events: Mutex<Vec<EventEnvelope>>,
    changed: Notify,
}

/// Fewer events than expected arrived in time.
#[derive(Debug, thiserror::Error)]
#[error("expected {expected} events within {timeout:?}, got {got}")]
pub struct NotEnoughEvents {
    /// Events expected.
    pub expected: usize,
    /// Events recorded.
    pub got: usize,
    /// How long it waited.
    pub timeout: Duration,
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an event to the record.
    pub fn record(&self, event: &EventEnvelope) {
        self.lock().push(event.clone());
        self.inner.changed.notify_waiters();
    }

    /// Everything recorded, in handling order.
    pub fn events(&self) -> Vec<EventEnvelope> {
        self.lock().clone()
    }

    /// How many events were recorded.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until at least `count` events are recorded and returns them.
    pub async fn wait_for(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<EventEnvelope>, NotEnoughEvents> {
        self.wait_until(timeout, |events| events.len() >= count)
            .await
            .map_err(|got| NotEnoughEvents {
                expected: count,
                got,
                timeout,
            })
    }

    /// Waits until `condition` holds for the recorded events and returns them; on timeout,
    /// returns how many were recorded.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        condition: impl Fn(&[EventEnvelope]) -> bool,
    ) -> Result<Vec<EventEnvelope>, usize> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.inner.changed.notified();
            let events = self.events();
            if condition(&events) {
                return Ok(events);
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err(self.len());
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<EventEnvelope>> {
        self.inner
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Handler for Recorder {
    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        self.record(event);
        Ok(())
    }
}
