//! The in-memory event store: everything behind one lock, so each append is atomic.

mod outbox;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::outbox::OutboxEntry;
use event_bus_core::envelope::EventEnvelope;

use super::{
    AppendOutcome, EventFilter, EventStore, ExpectedVersion, RecordedEvent, RetentionMode,
    Snapshot, StoreError, StoreStats, StreamId, Upcasters, stamp,
};

/// An event store in process memory; clones share the store. Nothing survives the process.
#[derive(Clone, Default)]
pub struct MemoryEventStore {
    state: Arc<Mutex<State>>,
    upcasters: Upcasters,
    snapshot_interval: u64,
}

#[derive(Default)]
struct State {
    last_position: u64,
    log: BTreeMap<u64, RecordedEvent>,
    streams: HashMap<StreamId, Stream>,
    snapshots: HashMap<StreamId, Snapshot>,
    archive: Vec<RecordedEvent>,
    outbox: BTreeMap<u64, OutboxEntry>,
    outbox_claims: HashMap<u64, outbox::Claim>,
    last_outbox_id: u64,
}

#[derive(Default)]
struct Stream {
    version: u64,
    positions: BTreeMap<u64, u64>,
}

impl MemoryEventStore {
    /// An empty store that snapshots every `snapshot_interval` folded events (0: never).
    pub fn new(snapshot_interval: u64) -> Self {
        Self {
            snapshot_interval,
            ..Self::default()
        }
    }

    /// Upcasts events on read with `upcasters`.
    #[must_use]
    pub fn with_upcasters(mut self, upcasters: Upcasters) -> Self {
        self.upcasters = upcasters;
        self
    }

    /// Events moved to the archive by retention, oldest first.
    pub fn archived(&self) -> Vec<RecordedEvent> {
        self.lock().archive.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn upcast(&self, events: Vec<RecordedEvent>) -> Result<Vec<RecordedEvent>, StoreError> {
        if self.upcasters.is_empty() {
            return Ok(events);
        }
        events
            .into_iter()
            .map(|mut recorded| {
                recorded.envelope = self.upcasters.upcast(recorded.envelope)?;
                Ok(recorded)
            })
            .collect()
    }
}

impl State {
    fn append(
        &mut self,
        stream: &StreamId,
        expected: ExpectedVersion,
        mut events: Vec<EventEnvelope>,
    ) -> Result<AppendOutcome, StoreError> {
        let current = self.streams.get(stream).map_or(0, |s| s.version);
        if !expected.matches(current) {
            return Err(StoreError::Concurrency {
                stream: stream.clone(),
                expected,
                actual: current,
            });
        }
        stamp(stream, current, &mut events);
        let recorded_at = Utc::now();
        let entry = self.streams.entry(stream.clone()).or_default();
        let mut recorded = Vec::with_capacity(events.len());
        for envelope in events {
            self.last_position += 1;
            let event = RecordedEvent {
                position: self.last_position,
                recorded_at,
                envelope,
            };
            entry
                .positions
                .insert(event.envelope.aggregate_version, event.position);
            entry.version = event.envelope.aggregate_version;
            self.log.insert(event.position, event.clone());
            recorded.push(event);
        }
        Ok(AppendOutcome {
            version: entry.version,
            events: recorded,
        })
    }
}

#[async_trait]
impl EventStore for MemoryEventStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn snapshot_interval(&self) -> u64 {
        self.snapshot_interval
    }

    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<EventEnvelope>,
    ) -> Result<AppendOutcome, StoreError> {
        self.lock().append(stream, expected, events)
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: Option<usize>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let events: Vec<RecordedEvent> = {
            let state = self.lock();
            let Some(entry) = state.streams.get(stream) else {
                return Ok(Vec::new());
            };
            entry
                .positions
                .range(from_version.max(1)..)
                .filter_map(|(_, position)| state.log.get(position).cloned())
                .take(limit.unwrap_or(usize::MAX))
                .collect()
        };
        self.upcast(events)
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError> {
        Ok(self.lock().streams.get(stream).map_or(0, |s| s.version))
    }

    async fn read_all(
        &self,
        filter: &EventFilter,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let events: Vec<RecordedEvent> = self
            .lock()
            .log
            .range(after_position + 1..)
            .map(|(_, event)| event)
            .filter(|event| filter.matches(&event.envelope))
            .take(limit)
            .cloned()
            .collect();
        self.upcast(events)
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let mut state = self.lock();
        let newer = state
            .snapshots
            .get(&snapshot.stream)
            .is_none_or(|kept| kept.version <= snapshot.version);
        if newer {
            state.snapshots.insert(snapshot.stream.clone(), snapshot);
        }
        Ok(())
    }

    async fn latest_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        Ok(self.lock().snapshots.get(stream).cloned())
    }

    async fn expire_before(
        &self,
        cutoff: DateTime<Utc>,
        mode: RetentionMode,
    ) -> Result<u64, StoreError> {
        let mut state = self.lock();
        let expired: Vec<u64> = state
            .log
            .values()
            .filter(|event| event.envelope.timestamp < cutoff)
            .map(|event| event.position)
            .collect();
        for position in &expired {
            if let Some(event) = state.log.remove(position) {
                if let Some(stream) = state.streams.get_mut(&StreamId::of(&event.envelope)) {
                    stream.positions.remove(&event.envelope.aggregate_version);
                }
                if mode == RetentionMode::Archive {
                    state.archive.push(event);
                }
            }
        }
        Ok(expired.len() as u64)
    }

    async fn expire_snapshots_before(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut state = self.lock();
        let before = state.snapshots.len();
        state
            .snapshots
            .retain(|_, snapshot| snapshot.taken_at >= cutoff);
        Ok((before - state.snapshots.len()) as u64)
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        let state = self.lock();
        let mut stats = StoreStats {
            events: state.log.len() as u64,
            streams: state.streams.len() as u64,
            snapshots: state.snapshots.len() as u64,
            archived: state.archive.len() as u64,
            last_position: state.last_position,
            outbox_pending: state
                .outbox
                .values()
                .filter(|e| e.published_at.is_none())
                .count() as u64,
            ..StoreStats::default()
        };
        for event in state.log.values() {
            let at = event.envelope.timestamp;
            stats.oldest = Some(stats.oldest.map_or(at, |o| o.min(at)));
            stats.newest = Some(stats.newest.map_or(at, |n| n.max(at)));
            *stats
                .by_type
                .entry(event.envelope.event_type.clone())
                .or_default() += 1;
        }
        Ok(stats)
    }
}
