//! The in-memory store's outbox: enqueued under the same lock as the append; claims expire on
//! Tokio's clock (so a test with a paused clock can move past a lease).

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use tokio::time::Instant;
use uuid::Uuid;

use crate::outbox::{Outbox, OutboxEntry};
use crate::store::{AppendOutcome, ExpectedVersion, StoreError, StreamId};
use event_bus_core::envelope::EventEnvelope;

use super::MemoryEventStore;

/// A relay's hold on an entry.
pub(super) struct Claim {
    relay: Uuid,
    until: Instant,
}

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

    async fn claim(
        &self,
        relay: Uuid,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let now = Instant::now();
        let mut guard = self.lock();
        let state = &mut *guard;
        let held_by_another = |id: &u64| {
            state
                .outbox_claims
                .get(id)
                .is_some_and(|claim| claim.relay != relay && claim.until > now)
        };
        let pending = || {
            state
                .outbox
                .values()
                .filter(|entry| entry.published_at.is_none())
        };
        let blocked: HashSet<(&str, &str)> = pending()
            .filter(|entry| held_by_another(&entry.id))
            .map(aggregate)
            .collect();
        let claimed: Vec<OutboxEntry> = pending()
            .filter(|entry| !blocked.contains(&aggregate(entry)))
            .take(limit)
            .cloned()
            .collect();
        for entry in &claimed {
            let until = now + lease;
            state.outbox_claims.insert(entry.id, Claim { relay, until });
        }
        Ok(claimed)
    }

    async fn release(&self, relay: Uuid, ids: &[u64]) -> Result<(), StoreError> {
        let mut state = self.lock();
        for id in ids {
            if state
                .outbox_claims
                .get(id)
                .is_some_and(|claim| claim.relay == relay)
            {
                state.outbox_claims.remove(id);
            }
        }
        Ok(())
    }

    async fn mark_published(&self, ids: &[u64]) -> Result<(), StoreError> {
        let now = Utc::now();
        let mut state = self.lock();
        for id in ids {
            if let Some(entry) = state.outbox.get_mut(id) {
                entry.published_at = Some(now);
            }
            state.outbox_claims.remove(id);
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

/// The ordering key of an entry: its aggregate.
fn aggregate(entry: &OutboxEntry) -> (&str, &str) {
    (
        entry.envelope.aggregate_type.as_str(),
        entry.envelope.aggregate_id.as_str(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store_with(streams: &[(&str, u32)]) -> MemoryEventStore {
        let store = MemoryEventStore::new(0);
        for (id, events) in streams {
            let events = (0..*events)
                .map(|n| {
                    EventEnvelope::builder("order.placed", serde_json::json!({ "n": n })).build()
                })
                .collect();
            store
                .append_and_enqueue(&StreamId::new("order", *id), ExpectedVersion::Any, events)
                .await
                .unwrap();
        }
        store
    }

    fn ids(entries: &[OutboxEntry]) -> Vec<u64> {
        entries.iter().map(|entry| entry.id).collect()
    }

    const LEASE: Duration = Duration::from_secs(10);

    #[tokio::test(start_paused = true)]
    async fn a_claimed_aggregate_is_left_to_its_relay_until_released_or_expired() {
        // Entries 1-2 belong to o-1, 3-4 to o-2, 5 to o-1 again.
        let store = store_with(&[("o-1", 2), ("o-2", 2), ("o-1", 1)]).await;
        let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(ids(&store.claim(first, 1, LEASE).await.unwrap()), [1]);
        assert_eq!(
            ids(&store.claim(second, 10, LEASE).await.unwrap()),
            [3, 4],
            "o-1 stays with the first relay, its later entries too"
        );
        assert_eq!(
            ids(&store.claim(second, 10, LEASE).await.unwrap()),
            [3, 4],
            "a relay may claim its own entries again"
        );

        store.release(first, &[1]).await.unwrap();
        assert_eq!(
            ids(&store.claim(first, 10, LEASE).await.unwrap()),
            [1, 2, 5]
        );

        tokio::time::advance(LEASE).await;
        assert_eq!(
            ids(&store.claim(second, 10, LEASE).await.unwrap()),
            [1, 2, 3, 4, 5],
            "an expired claim is anyone's"
        );
        store.mark_published(&[1, 2, 3]).await.unwrap();
        assert!(store.claim(first, 10, LEASE).await.unwrap().is_empty());
        store.release(second, &[4, 5]).await.unwrap();
        assert_eq!(ids(&store.claim(first, 10, LEASE).await.unwrap()), [4, 5]);
    }
}
