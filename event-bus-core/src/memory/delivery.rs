//! How a message handed to one member of an in-memory consumer group is settled.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::topic::{Topic, TopicState};
use crate::error::BusError;
use crate::kit::Settle;
use crate::message::Message;
use crate::transport::Nack;

/// The group's record of one offset in flight.
pub(super) struct MemorySettle {
    pub(super) topic: Arc<Topic>,
    pub(super) group: Arc<str>,
    pub(super) offset: usize,
    /// The group keeps per-key order, so an ack may release a message held behind this one.
    pub(super) ordering: bool,
}

impl MemorySettle {
    /// Settles the offset. Members waiting for work are woken only when it can give them
    /// some: a message back in the queue, or (with ordering) one released by an ack.
    fn settle(&self, nack: Option<Nack>) {
        let change = |state: &mut TopicState| {
            if let Some(group) = state.groups.get_mut(&*self.group) {
                match nack {
                    None => group.ack(self.offset),
                    Some(nack) => group.nack(self.offset, nack, Instant::now()),
                }
            }
            state.trim();
        };
        if nack.is_some() || self.ordering {
            self.topic.update(change);
        } else {
            change(&mut self.topic.lock());
        }
    }
}

#[async_trait]
impl Settle for MemorySettle {
    async fn ack(self) -> Result<(), BusError> {
        self.settle(None);
        Ok(())
    }

    async fn retry(self, after: Duration, _: Message, _: u32) -> Result<(), BusError> {
        self.settle(Some(Nack::RequeueAfter(after)));
        Ok(())
    }

    fn hand_back(self, _: Message, _: u32) {
        self.settle(Some(Nack::Requeue));
    }
}
