//! One member of a consumer group of the in-memory broker.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::time::Instant;

use super::delivery::MemorySettle;
use super::group::{Dispatch, GroupState};
use super::topic::Topic;
use crate::error::BusError;
use crate::kit::Delivered;
use crate::transport::{Delivery, Subscription};

/// Competes with the other members of its group for the topic's messages.
pub(super) struct MemorySubscription {
    pub(super) topic: Arc<Topic>,
    pub(super) group: String,
    pub(super) ordering: bool,
    pub(super) ephemeral: bool,
}

impl MemorySubscription {
    fn try_take(&self) -> Result<Delivered<MemorySettle>, Option<Instant>> {
        let mut state = self.topic.lock();
        let state = &mut *state;
        let start = state.log.start();
        let group = state
            .groups
            .entry(self.group.clone())
            .or_insert_with(|| GroupState::starting_at(start));
        match group.dispatch(&state.log, self.ordering, Instant::now()) {
            Dispatch::Deliver { offset, attempt } => Ok(Delivered::new(
                state
                    .log
                    .get(offset)
                    .cloned()
                    .expect("a group's unsettled offsets are held"),
                attempt,
                MemorySettle {
                    topic: Arc::clone(&self.topic),
                    group: self.group.clone(),
                    offset,
                    ordering: self.ordering,
                },
            )),
            Dispatch::Wait(wake) => Err(wake),
        }
    }
}

#[async_trait]
impl Subscription for MemorySubscription {
    async fn next(&mut self) -> Option<Result<Box<dyn Delivery>, BusError>> {
        loop {
            let changed = self.topic.changed();
            match self.try_take() {
                Ok(delivery) => return Some(Ok(delivery.boxed())),
                Err(Some(wake)) => {
                    tokio::select! {
                        () = changed => {}
                        () = tokio::time::sleep_until(wake) => {}
                    }
                }
                Err(None) => changed.await,
            }
        }
    }

    async fn close(self: Box<Self>) -> Result<(), BusError> {
        if self.ephemeral {
            let mut state = self.topic.lock();
            state.groups.remove(&self.group);
            state.trim();
        }
        Ok(())
    }
}
