//! The in-memory store's outbox: enqueued under the same lock as the append.

use async_trait::async_trait;
use chrono::Utc;

use crate::outbox::{Outbox, OutboxEntry};
use crate::store::{AppendOutcome, ExpectedVersion, StoreError, StreamId};
use event_bus_core::envelope::EventEnvelope;

use super::MemoryEventStore;

#[async_trait]
impl Outbox for MemoryEventStore {
    async fn append_and_enqueue(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<EventEnvelope>,
    ) -> Result<AppendOutcome, StoreError> {
        let mut state = self.lock();
        let outcome = state.append(stream, expected, events)?;
        for recorded in &outcome.events {
            state.last_outbox_id += 1;
            let id = state.last_outbox_id;
            state.outbox.insert(
                id,
                OutboxEntry {
                    id,
                    envelope: recorded.envelope.clone(),
                    enqueued_at: recorded.recorded_at,
                    attempts: 0,
                    last_error: None,
                    published_at: None,
                },
            );
        }
        Ok(outcome)
    }

    async fn pending(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        Ok(self
            .lock()
            .outbox
            .values()
            .filter(|entry| entry.published_at.is_none())
            .take(limit)
            .cloned()
            .collect())
    }

    async fn mark_published(&self, ids: &[u64]) -> Result<(), StoreError> {
        let now = Utc::now();
        let mut state = self.lock();
        for id in ids {
            if let Some(entry) = state.outbox.get_mut(id) {
                entry.published_at = Some(now);
            }
        }
        Ok(())
    }

    async fn record_failure(&self, id: u64, error: &str) -> Result<(), StoreError> {
        if let Some(entry) = self.lock().outbox.get_mut(&id) {
            entry.attempts += 1;
            entry.last_error = Some(error.to_owned());
        }
        Ok(())
    }
}
