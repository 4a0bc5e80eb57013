//! A message handed to one member of a consumer group of the in-memory broker.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::time::Instant;

use super::topic::Topic;
use crate::error::BusError;
use crate::message::Message;
use crate::transport::{Delivery, Nack};

/// A delivery that is requeued for its group if dropped unsettled.
pub(super) struct MemoryDelivery {
    pub(super) topic: Arc<Topic>,
    pub(super) group: String,
    pub(super) offset: usize,
    pub(super) attempt: u32,
    pub(super) message: Message,
    pub(super) settled: bool,
}

impl MemoryDelivery {
    fn settle(&mut self, nack: Option<Nack>) {
        self.settled = true;
        let (group, offset) = (&self.group, self.offset);
        self.topic.update(|state| {
            if let Some(group) = state.groups.get_mut(group) {
                match nack {
                    None => group.ack(offset),
                    Some(nack) => group.nack(offset, nack, Instant::now()),
                }
            }
        });
    }
}

#[async_trait]
impl Delivery for MemoryDelivery {
    fn message(&self) -> &Message {
        &self.message
    }

    fn attempt(&self) -> u32 {
        self.attempt
    }

    async fn ack(mut self: Box<Self>) -> Result<(), BusError> {
        self.settle(None);
        Ok(())
    }

    async fn nack(mut self: Box<Self>, nack: Nack) -> Result<(), BusError> {
        self.settle(Some(nack));
        Ok(())
    }
}

impl Drop for MemoryDelivery {
    fn drop(&mut self) {
        if !self.settled {
            self.settle(Some(Nack::Requeue));
        }
    }
}
