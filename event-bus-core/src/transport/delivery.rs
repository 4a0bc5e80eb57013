//! One received message and its settlement.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::BusError;
use crate::message::Message;

/// How a negatively acknowledged delivery is treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nack {
    /// Deliver it again as soon as possible.
    Requeue,
    /// Deliver it again after the delay.
    RequeueAfter(Duration),
    /// Drop it; the caller has already moved it elsewhere (for example to a dead-letter topic).
    Discard,
}

/// A received message that must be settled with [`ack`](Delivery::ack) or
/// [`nack`](Delivery::nack). A delivery dropped unsettled is redelivered later.
#[async_trait]
pub trait Delivery: Send + Sync {
    /// The received message.
    fn message(&self) -> &Message;
    /// How many times this message has been delivered to its consumer group, starting at 1.
    fn attempt(&self) -> u32;
    /// Confirms the message was handled; it will not be delivered to this group again.
    async fn ack(self: Box<Self>) -> Result<(), BusError>;
    /// Rejects the message.
    async fn nack(self: Box<Self>, nack: Nack) -> Result<(), BusError>;
    /// Sets a header on the message, for backends that deliver a retry as a new copy of it;
    /// others deliver the message as it was.
    fn set_header(&mut self, _name: &str, _value: String) {}
}
