//! Replaying stored events: a time range with type and aggregate filters, read in batches and
//! handed to a handler or published back onto the bus, each marked with `x-replayed: true`.

use std::sync::Arc;

use crate::store::{EventFilter, EventStore, StoreError};
use event_bus_core::bus::EventBus;
use event_bus_core::error::BusError;
use event_bus_core::handler::{Handler, HandlerError};

pub use event_bus_core::envelope::{REPLAYED_HEADER, SkipReplays, skip_replays};

/// How far a replay got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayProgress {
    /// Events replayed so far.
    pub replayed: u64,
    /// Global position of the last event replayed; resume after it.
    pub last_position: u64,
}

/// Why a replay stopped early. Everything before `progress.last_position` was replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The store could not be read.
    #[error("replay stopped after position {}: {source}", progress.last_position)]
    Store {
        /// How far it got.
        progress: ReplayProgress,
        /// The store error.
        source: StoreError,
    },
    /// The handler failed on the event at `position`.
    #[error("replay stopped at position {position}: {source}")]
    Handler {
        /// How far it got.
        progress: ReplayProgress,
        /// Position of the failing event.
        position: u64,
        /// The handler's error.
        source: HandlerError,
    },
    /// Publishing the event at `position` failed.
    #[error("replay stopped at position {position}: {source}")]
    Publish {
        /// How far it got.
        progress: ReplayProgress,
        /// Position of the failing event.
        position: u64,
        /// The bus error.
        source: BusError,
    },
}

/// Reads events from a store in batches and replays them.
pub struct Replayer {
    store: Arc<dyn EventStore>,
    batch_size: usize,
}

impl Replayer {
    /// A replayer over `store`, 500 events per batch.
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        Self {
            store,
            batch_size: 500,
        }
    }

    /// Sets the batch size (at least 1).
    #[must_use]
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Counts the events `filter` selects after `after_position`, without replaying them.
    pub async fn count(
        &self,
        filter: &EventFilter,
        after_position: u64,
    ) -> Result<u64, StoreError> {
        let mut count = 0;
        let mut position = after_position;
        loop {
            let batch = self
                .store
                .read_all(filter, position, self.batch_size)
                .await?;
            count += batch.len() as u64;
            match batch.last() {
                Some(last) if batch.len() == self.batch_size => position = last.position,
                _ => return Ok(count),
            }
        }
    }

    /// Replays the selected events after `after_position` into `handler`, in position order;
    /// `progress` is called after each batch.
    pub async fn replay_into(
        &self,
        filter: &EventFilter,
        after_position: u64,
        handler: &dyn Handler,
        mut progress: impl FnMut(ReplayProgress) + Send,
    ) -> Result<ReplayProgress, ReplayError> {
        let mut done = ReplayProgress {
            replayed: 0,
            last_position: after_position,
        };
        loop {
            let batch = self
                .store
                .read_all(filter, done.last_position, self.batch_size)
                .await
                .map_err(|source| ReplayError::Store {
                    progress: done,
                    source,
                })?;
            let full = batch.len() == self.batch_size;
            for recorded in batch {
                let event = recorded.envelope.into_replay();
                handler
                    .handle(&event)
                    .await
                    .map_err(|source| ReplayError::Handler {
                        progress: done,
                        position: recorded.position,
                        source,
                    })?;
                done.replayed += 1;
                done.last_position = recorded.position;
            }
            progress(done);
            if !full {
                return Ok(done);
            }
        }
    }

    /// Publishes the selected events after `after_position` back onto `bus`, each to its
    /// type's topic, a batch at a time; `progress` is called after each batch.
    pub async fn replay_to_bus(
        &self,
        filter: &EventFilter,
        after_position: u64,
        bus: &EventBus,
        mut progress: impl FnMut(ReplayProgress) + Send,
    ) -> Result<ReplayProgress, ReplayError> {
        let mut done = ReplayProgress {
            replayed: 0,
            last_position: after_position,
        };
        loop {
            let batch = self
                .store
                .read_all(filter, done.last_position, self.batch_size)
                .await
                .map_err(|source| ReplayError::Store {
                    progress: done,
                    source,
                })?;
            let full = batch.len() == self.batch_size;
            let positions: Vec<u64> = batch.iter().map(|r| r.position).collect();
            let events: Vec<_> = batch
                .into_iter()
                .map(|r| r.envelope.into_replay())
                .collect();
            let outcomes = bus.publish_batch(&events).await;
            for (position, outcome) in positions.into_iter().zip(outcomes) {
                if let Err(source) = outcome {
                    return Err(ReplayError::Publish {
                        progress: done,
                        position,
                        source,
                    });
                }
                done.replayed += 1;
                done.last_position = position;
            }
            progress(done);
            if !full {
                return Ok(done);
            }
        }
    }
}
