//! How a message handed to a consumer is settled: `basic.ack`, `basic.nack` with requeue, or a
//! delayed retry through a TTL queue.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use event_bus_core::kit::Settle;
use event_bus_core::{BusError, Message};
use lapin::Acker;
use lapin::options::{BasicAckOptions, BasicNackOptions};

use super::properties::properties;
use super::publisher::{ConfirmedPublisher, Route};
use super::{amqp_error, within};

/// One unsettled message of a group's queue.
pub(super) struct RabbitMqSettle {
    pub(super) acker: Acker,
    pub(super) publisher: Arc<ConfirmedPublisher>,
    pub(super) queue: Arc<str>,
    /// The queue is an instance-scoped group's, whose retry queues expire with it.
    pub(super) ephemeral: bool,
}

const REQUEUE: BasicNackOptions = BasicNackOptions {
    multiple: false,
    requeue: true,
};

impl RabbitMqSettle {
    /// Bounded by the publish timeout, so a settle lost with its connection holds neither
    /// the delivery's slot nor shutdown: the broker hands the message out again anyway.
    async fn settled(
        &self,
        call: impl Future<Output = lapin::Result<bool>>,
    ) -> Result<(), BusError> {
        within(self.publisher.timeout(), async {
            call.await.map(drop).map_err(amqp_error)
        })
        .await
    }

    async fn requeue(self) -> Result<(), BusError> {
        self.settled(self.acker.nack(REQUEUE)).await
    }

    /// Parks a copy in the retry queue of `delay` (the nearest step of the retry ladder),
    /// which hands it back to the group's queue when it expires, then acknowledges this one.
    /// Should the copy not be confirmed, or, under `EVENT_BUS_TOPOLOGY=existing`, the step's
    /// queue not exist (the broker returns the copy), the message is requeued at once instead,
    /// with a warning naming the queue: the delay is lost, never the message.
    async fn retry_after(
        self,
        delay: Duration,
        message: Message,
        attempt: u32,
    ) -> Result<(), BusError> {
        let parked = async {
            let retry_queue = self
                .publisher
                .retry_queue(&self.queue, delay, self.ephemeral)
                .await?;
            let route = Route {
                exchange: "",
                routing_key: &retry_queue,
                to_queue: true,
            };
            self.publisher
                .publish(
                    route,
                    || properties(&message, Some(attempt)),
                    &message.payload,
                )
                .await
        };
        match parked.await {
            Ok(()) => self.ack().await,
            Err(error) => {
                tracing::warn!(%error, queue = %self.queue, "rabbitmq: delayed retry failed; requeueing now");
                self.requeue().await
            }
        }
    }
}

#[async_trait]
impl Settle for RabbitMqSettle {
    async fn ack(self) -> Result<(), BusError> {
        self.settled(self.acker.ack(BasicAckOptions::default()))
            .await
    }

    async fn retry(self, after: Duration, message: Message, attempt: u32) -> Result<(), BusError> {
        if after.is_zero() {
            self.requeue().await
        } else {
            self.retry_after(after, message, attempt).await
        }
    }
}
