//! One member of a consumer group of the in-memory broker.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::delivery::MemorySettle;
use super::group::Dispatch;
use super::topic::{Topic, group_of};
use crate::error::BusError;
use crate::kit::Delivered;
use crate::transport::{Delivery, Subscription};

/// Competes with the other members of its group for the topic's messages.
pub(super) struct MemorySubscription {
    pub(super) topic: Arc<Topic>,
    pub(super) group: Arc<str>,
    pub(super) ordering: bool,
    pub(super) ephemeral: bool,
}

impl MemorySubscription {
    /// The next delivery, or when to look again (besides on a wake-up from `arrivals`).
    fn try_take(&self) -> Result<Delivered<MemorySettle>, (Option<Instant>, Arc<Notify>)> {
        let mut state = self.topic.lock();
        let state = &mut *state;
        let group = group_of(&mut state.groups, &self.group, state.log.start());
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
                    group: Arc::clone(&self.group),
                    offset,
                    ordering: self.ordering,
                },
            )),
            Dispatch::Wait(wake) => Err((wake, Arc::clone(&group.arrivals))),
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
                Err((wake, arrivals)) => {
                    let due = async {
                        match wake {
                            Some(wake) => tokio::time::sleep_until(wake).await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        () = changed => {}
                        () = arrivals.notified() => {}
                        () = due => {}
                    }
                }
            }
        }
    }

    async fn close(self: Box<Self>) -> Result<(), BusError> {
        if self.ephemeral {
            let mut state = self.topic.lock();
            state.groups.remove(&*self.group);
            state.trim();
        }
        Ok(())
    }
}
