//! One message handed to a consumer, settled with `basic.ack`, `basic.nack` or a delayed
//! retry through a TTL queue.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use event_bus_core::{BusError, Delivery, Message, Nack};
use lapin::Acker;
use lapin::options::{BasicAckOptions, BasicNackOptions};

use super::amqp_error;
use super::properties::properties;
use super::publisher::{ConfirmedPublisher, Route};

/// A delivered message; dropped unsettled, it goes back to its queue at once.
pub(super) struct RabbitMqDelivery {
    acker: Acker,
    publisher: Arc<ConfirmedPublisher>,
    queue: Arc<str>,
    message: Message,
    attempt: u32,
    settled: bool,
}

impl RabbitMqDelivery {
    pub(super) fn new(
        acker: Acker,
        publisher: Arc<ConfirmedPublisher>,
        queue: Arc<str>,
        message: Message,
        attempt: u32,
    ) -> Self {
        Self {
            acker,
            publisher,
            queue,
            message,
            attempt,
            settled: false,
        }
    }

    async fn ack_message(&mut self) -> Result<(), BusError> {
        self.settled = true;
        self.acker
            .ack(BasicAckOptions::default())
            .await
            .map(drop)
            .map_err(amqp_error)
    }

    async fn requeue(&mut self) -> Result<(), BusError> {
        self.settled = true;
        self.acker.nack(REQUEUE).await.map(drop).map_err(amqp_error)
    }

    /// Parks a copy in the retry queue of `delay`, which hands it back to the group's queue
    /// when it expires, then acknowledges this one. Should the copy not be confirmed, this
    /// delivery is requeued instead, so the message is never lost.
    async fn retry_after(&mut self, delay: Duration) -> Result<(), BusError> {
        let parked = async {
            let retry_queue = self
                .publisher
                .declare_retry_queue(&self.queue, delay)
                .await?;
            let route = Route {
                exchange: "",
                routing_key: &retry_queue,
            };
            let properties = properties(&self.message, Some(self.attempt));
            self.publisher
                .publish(route, &properties, &self.message.payload)
                .await
        };
        match parked.await {
            Ok(()) => self.ack_message().await,
            Err(error) => {
                tracing::warn!(%error, queue = %self.queue, "rabbitmq: delayed retry failed; requeueing now");
                self.requeue().await
            }
        }
    }
}

const REQUEUE: BasicNackOptions = BasicNackOptions {
    multiple: false,
    requeue: true,
};

#[async_trait]
impl Delivery for RabbitMqDelivery {
    fn message(&self) -> &Message {
        &self.message
    }

    fn attempt(&self) -> u32 {
        self.attempt
    }

    async fn ack(mut self: Box<Self>) -> Result<(), BusError> {
        self.ack_message().await
    }

    async fn nack(mut self: Box<Self>, nack: Nack) -> Result<(), BusError> {
        match nack {
            Nack::Requeue => self.requeue().await,
            Nack::RequeueAfter(delay) if delay.is_zero() => self.requeue().await,
            Nack::RequeueAfter(delay) => self.retry_after(delay).await,
            Nack::Discard => self.ack_message().await,
        }
    }
}

impl Drop for RabbitMqDelivery {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let acker = self.acker.clone();
        runtime.spawn(async move {
            if let Err(error) = acker.nack(REQUEUE).await {
                tracing::debug!(%error, "rabbitmq: returning an unsettled delivery failed; the broker returns it when the channel closes");
            }
        });
    }
}
