//! The consuming half of a backend.

use async_trait::async_trait;

use super::{Delivery, SubscriptionConfig};
use crate::error::BusError;

/// Opens subscriptions: one consumer-group member each.
#[async_trait]
pub trait Subscriber: Send + Sync {
    /// Joins the consumer group of `config` on its topic, creating what the broker needs.
    async fn subscribe(
        &self,
        config: &SubscriptionConfig,
    ) -> Result<Box<dyn Subscription>, BusError>;

    /// Creates on the broker what a subscription of `config` uses, without consuming
    /// (`eventbus setup`). The default joins the group and leaves it at once; a backend whose
    /// member takes messages ahead (a long pull) creates instead.
    async fn provision(&self, config: &SubscriptionConfig) -> Result<(), BusError> {
        self.subscribe(config).await?.close().await
    }
}

/// A stream of deliveries for one consumer-group member.
///
/// With ordering on, a backend must not hand out a message while an earlier one with the same
/// key is unsettled.
#[async_trait]
pub trait Subscription: Send {
    /// Waits for the next delivery; `None` once the subscription is closed for good.
    ///
    /// Must be cancel-safe: dropping the future before it completes loses no message.
    async fn next(&mut self) -> Option<Result<Box<dyn Delivery>, BusError>>;

    /// Leaves the consumer group; unsettled deliveries are redelivered to the group.
    async fn close(self: Box<Self>) -> Result<(), BusError>;
}
