//! [`SealedStore`]: the store side. Appends seal declared personal fields, snapshots are sealed
//! whole, and reads (per stream, store-wide, replay, rebuilding a state) open them again.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use event_bus_core::envelope::EventEnvelope;
use event_store::outbox::{Outbox, OutboxEntry};
use event_store::store::{
    AppendOutcome, EventFilter, EventStore, ExpectedVersion, RecordedEvent, RetentionMode,
    Snapshot, StoreError, StoreStats, StreamId,
};
use uuid::Uuid;

use crate::sealer::{SealError, Sealer};

/// Backend name in the store errors this layer reports.
const LAYER: &str = "personal-data";

/// Which subject's key seals a stream's snapshots; `None` leaves them in the clear.
pub type SnapshotSubject = dyn Fn(&StreamId) -> Option<String> + Send + Sync;

/// An event store whose stored events and snapshots hold personal data only sealed.
///
/// Snapshots are sealed whole with the key of the subject
/// [`snapshot_subject`](Self::snapshot_subject) names, by default the stream's aggregate id; a
/// snapshot whose subject was forgotten reads as none, so the state is rebuilt from the
/// (erased) events.
/// Upcasters of the inner store see personal fields sealed.
pub struct SealedStore<S> {
    inner: S,
    sealer: Sealer,
    snapshot_subject: Arc<SnapshotSubject>,
}

impl<S: EventStore> SealedStore<S> {
    /// Seals what is written to `inner` with `sealer`.
    pub fn new(inner: S, sealer: Sealer) -> Self {
        Self {
            inner,
            sealer,
            snapshot_subject: Arc::new(|stream: &StreamId| Some(stream.aggregate_id.clone())),
        }
    }

    /// Names the subject whose key seals a stream's snapshots (`None`: not sealed).
    #[must_use]
    pub fn snapshot_subject(
        mut self,
        rule: impl Fn(&StreamId) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.snapshot_subject = Arc::new(rule);
        self
    }

    /// The store underneath, holding everything sealed.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The sealer.
    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    async fn seal_all(&self, events: &mut [EventEnvelope]) -> Result<(), StoreError> {
        for event in events {
            self.sealer.seal(event).await.map_err(layer_error)?;
        }
        Ok(())
    }

    async fn open_all(&self, events: &mut [RecordedEvent]) -> Result<(), StoreError> {
        for event in events {
            self.sealer
                .open(&mut event.envelope)
                .await
                .map_err(layer_error)?;
        }
        Ok(())
    }

    async fn open_outcome(&self, mut outcome: AppendOutcome) -> Result<AppendOutcome, StoreError> {
        self.open_all(&mut outcome.events).await?;
        Ok(outcome)
    }
}

fn layer_error(error: SealError) -> StoreError {
    StoreError::backend(LAYER, error)
}

#[async_trait]
impl<S: EventStore> EventStore for SealedStore<S> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn snapshot_interval(&self) -> u64 {
        self.inner.snapshot_interval()
    }

    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        mut events: Vec<EventEnvelope>,
    ) -> Result<AppendOutcome, StoreError> {
        self.seal_all(&mut events).await?;
        let outcome = self.inner.append(stream, expected, events).await?;
        self.open_outcome(outcome).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: Option<usize>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut events = self.inner.read_stream(stream, from_version, limit).await?;
        self.open_all(&mut events).await?;
        Ok(events)
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError> {
        self.inner.stream_version(stream).await
    }

    async fn read_all(
        &self,
        filter: &EventFilter,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut events = self.inner.read_all(filter, after_position, limit).await?;
        self.open_all(&mut events).await?;
        Ok(events)
    }

    /// Seals the state with its subject's key; a forgotten subject's snapshot is not saved.
    async fn save_snapshot(&self, mut snapshot: Snapshot) -> Result<(), StoreError> {
        if let Some(subject) = (self.snapshot_subject)(&snapshot.stream) {
            match self
                .sealer
                .seal_value(&subject, &snapshot.state)
                .await
                .map_err(layer_error)?
            {
                Some(sealed) => snapshot.state = sealed,
                None => return Ok(()),
            }
        }
        self.inner.save_snapshot(snapshot).await
    }

    async fn latest_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        let Some(mut snapshot) = self.inner.latest_snapshot(stream).await? else {
            return Ok(None);
        };
        match self
            .sealer
            .open_value(snapshot.state)
            .await
            .map_err(layer_error)?
        {
            Some(state) => {
                snapshot.state = state;
                Ok(Some(snapshot))
            }
            None => Ok(None),
        }
    }

    async fn expire_before(
        &self,
        cutoff: DateTime<Utc>,
        mode: RetentionMode,
    ) -> Result<u64, StoreError> {
        self.inner.expire_before(cutoff, mode).await
    }

    async fn expire_snapshots_before(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        self.inner.expire_snapshots_before(cutoff).await
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        self.inner.stats().await
    }
}

/// Outbox entries stay sealed: the relay publishes them as stored.
#[async_trait]
impl<S: EventStore + Outbox> Outbox for SealedStore<S> {
    async fn append_and_enqueue(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        mut events: Vec<EventEnvelope>,
    ) -> Result<AppendOutcome, StoreError> {
        self.seal_all(&mut events).await?;
        let outcome = self
            .inner
            .append_and_enqueue(stream, expected, events)
            .await?;
        self.open_outcome(outcome).await
    }

    async fn pending(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        self.inner.pending(limit).await
    }

    async fn claim(
        &self,
        relay: Uuid,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        self.inner.claim(relay, limit, lease).await
    }

    async fn release(&self, relay: Uuid, ids: &[u64]) -> Result<(), StoreError> {
        self.inner.release(relay, ids).await
    }

    async fn mark_published(&self, ids: &[u64]) -> Result<(), StoreError> {
        self.inner.mark_published(ids).await
    }

    async fn record_failure(&self, id: u64, error: &str) -> Result<(), StoreError> {
        self.inner.record_failure(id, error).await
    }
}
