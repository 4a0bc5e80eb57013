//! Snapshots and rebuilding an aggregate's state: from the latest snapshot, then the events after it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

use event_bus_core::envelope::EventEnvelope;

use super::{EventStore, StoreError, StreamId};

/// Events read per page while rebuilding a state.
const PAGE: usize = 10_000;

/// An aggregate's state as of a stream version, encoded as JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// The aggregate's stream.
    pub stream: StreamId,
    /// The stream version the state includes.
    pub version: u64,
    /// The encoded state.
    pub state: serde_json::Value,
    /// When it was taken.
    pub taken_at: DateTime<Utc>,
}

/// A rebuilt state and how it was rebuilt.
#[derive(Clone, Debug, PartialEq)]
pub struct Reconstructed<S> {
    /// The state after every event of the stream.
    pub state: S,
    /// The stream version the state includes.
    pub version: u64,
    /// The version of the snapshot it started from, if one was used.
    pub snapshot_version: Option<u64>,
    /// Events folded after the snapshot (or from the start).
    pub events_applied: u64,
    /// Whether a new snapshot was saved.
    pub snapshot_saved: bool,
}

/// Rebuilding states from a store; implemented for every [`EventStore`].
pub trait EventStoreExt: EventStore {
    /// Rebuilds the state of `stream`: starts from its latest snapshot (or `initial`) and folds
    /// the later events with `reducer`. When at least the store's snapshot interval of events
    /// was folded, saves a snapshot of the result. A snapshot that no longer decodes as `S` is
    /// ignored and the state is rebuilt from the first event.
    fn reconstruct_state<S, F>(
        &self,
        stream: &StreamId,
        reducer: F,
        initial: S,
    ) -> impl Future<Output = Result<Reconstructed<S>, StoreError>> + Send
    where
        S: Serialize + DeserializeOwned + Send + Sync,
        F: FnMut(S, &EventEnvelope) -> S + Send;
}

impl<T: EventStore + ?Sized> EventStoreExt for T {
    async fn reconstruct_state<S, F>(
        &self,
        stream: &StreamId,
        mut reducer: F,
        initial: S,
    ) -> Result<Reconstructed<S>, StoreError>
    where
        S: Serialize + DeserializeOwned + Send + Sync,
        F: FnMut(S, &EventEnvelope) -> S + Send,
    {
        let snapshot = self.latest_snapshot(stream).await?;
        let (mut state, snapshot_version) = match snapshot {
            Some(snapshot) => match serde_json::from_value::<S>(snapshot.state) {
                Ok(state) => (state, Some(snapshot.version)),
                Err(error) => {
                    tracing::warn!(%stream, %error, "ignoring a snapshot that does not decode");
                    (initial, None)
                }
            },
            None => (initial, None),
        };
        let mut version = snapshot_version.unwrap_or(0);
        let mut events_applied = 0u64;
        loop {
            let page = self.read_stream(stream, version + 1, Some(PAGE)).await?;
            let done = page.len() < PAGE;
            for recorded in &page {
                state = reducer(state, &recorded.envelope);
                version = recorded.envelope.aggregate_version;
                events_applied += 1;
            }
            if done {
                break;
            }
        }
        let interval = self.snapshot_interval();
        let snapshot_saved = interval > 0 && events_applied >= interval;
        if snapshot_saved {
            self.save_snapshot(Snapshot {
                stream: stream.clone(),
                version,
                state: serde_json::to_value(&state)?,
                taken_at: Utc::now(),
            })
            .await?;
        }
        Ok(Reconstructed {
            state,
            version,
            snapshot_version,
            events_applied,
            snapshot_saved,
        })
    }
}
