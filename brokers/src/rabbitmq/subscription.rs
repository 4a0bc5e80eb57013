//! One member of a consumer group: a consumer on the group's queue, opened again after the
//! connection is lost.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use event_bus_core::kit::Delivered;
use event_bus_core::{BusError, Delivery, Subscription, SubscriptionConfig};
use futures::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Consumer};

use super::connector::Connector;
use super::delivery::RabbitMqSettle;
use super::properties::message;
use super::publisher::ConfirmedPublisher;
use super::topology::Topology;
use super::{RabbitMqError, amqp_error, within};

/// Longest pause between attempts to consume again after a failure.
const MAX_REOPEN_PAUSE: Duration = Duration::from_secs(5);

/// Consumes a consumer group's queue with a prefetch of the subscription's max in-flight.
pub(super) struct RabbitMqSubscription {
    connector: Arc<Connector>,
    publisher: Arc<ConfirmedPublisher>,
    topic: String,
    queue: Arc<str>,
    prefetch: u16,
    ephemeral: bool,
    /// The dead-letter topic and the queue of the group that keeps its messages.
    dead_letters: Option<(String, String)>,
    consumer: Option<(Channel, Consumer)>,
    failures: u32,
}

impl RabbitMqSubscription {
    /// Declares the group's queue and its retry queues and starts consuming it; under
    /// `EVENT_BUS_TOPOLOGY=existing` checks instead, on a channel of its own, that they exist.
    pub(super) async fn open(
        connector: Arc<Connector>,
        publisher: Arc<ConfirmedPublisher>,
        config: &SubscriptionConfig,
    ) -> Result<Self, BusError> {
        let mut subscription = Self {
            connector,
            publisher,
            topic: config.topic.clone(),
            queue: Topology::group_queue(&config.topic, &config.consumer_group).into(),
            prefetch: u16::try_from(config.max_in_flight).unwrap_or(u16::MAX),
            ephemeral: config.ephemeral,
            dead_letters: config
                .dead_letter_topic
                .as_ref()
                .filter(|topic| **topic != config.topic)
                .map(|topic| {
                    let queue = Topology::group_queue(topic, &config.dead_letter_subscription);
                    (topic.clone(), queue)
                }),
            consumer: None,
            failures: 0,
        };
        let publisher = Arc::clone(&subscription.publisher);
        let topology = publisher.topology();
        if !topology.mode.creates() {
            // A passive declare that finds nothing closes its channel.
            let channel = subscription.connector.channel().await?;
            topology.check_subscription(&channel, config).await?;
            close(&channel).await?;
        }
        subscription.consume().await?;
        if topology.mode.creates() && !config.ephemeral {
            let channel = subscription.connector.channel().await?;
            topology.declare_retry_queues(&channel, config).await?;
            close(&channel).await?;
        }
        Ok(subscription)
    }

    /// Opens the group's consumer, given up after the publish timeout.
    async fn consume(&mut self) -> Result<(), BusError> {
        let consumer = within(self.publisher.timeout(), self.open_consumer()).await?;
        self.consumer = Some(consumer);
        Ok(())
    }

    async fn open_consumer(&self) -> Result<(Channel, Consumer), BusError> {
        let channel = self.connector.channel().await?;
        let topology = self.publisher.topology();
        if topology.mode.creates() {
            topology
                .declare_group(&channel, &self.topic, &self.queue, self.ephemeral)
                .await?;
            // Dead letters are kept from the start, not parked with unrouted messages.
            if let Some((topic, queue)) = &self.dead_letters {
                topology
                    .declare_group(&channel, topic, queue, false)
                    .await?;
            }
        }
        channel
            .basic_qos(self.prefetch, BasicQosOptions::default())
            .await
            .map_err(amqp_error)?;
        let consumer = channel
            .basic_consume(
                self.queue.as_ref().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(amqp_error)?;
        Ok((channel, consumer))
    }

    fn reopen_pause(&self) -> Duration {
        let exponent = self.failures.saturating_sub(1).min(6);
        (Duration::from_millis(100) * 2_u32.pow(exponent)).min(MAX_REOPEN_PAUSE)
    }

    fn lost(&mut self, error: BusError) -> Option<Result<Box<dyn Delivery>, BusError>> {
        self.consumer = None;
        self.failures += 1;
        Some(Err(error))
    }
}

#[async_trait]
impl Subscription for RabbitMqSubscription {
    async fn next(&mut self) -> Option<Result<Box<dyn Delivery>, BusError>> {
        if self.consumer.is_none() {
            tokio::time::sleep(self.reopen_pause()).await;
            if let Err(error) = self.consume().await {
                return self.lost(error);
            }
            tracing::info!(queue = %self.queue, "rabbitmq: consuming again");
            self.failures = 0;
        }
        let (_, consumer) = self.consumer.as_mut()?;
        match consumer.next().await {
            Some(Ok(delivery)) => {
                let (message, attempt) = message(&delivery.properties, delivery.data);
                let settle = RabbitMqSettle {
                    acker: delivery.acker,
                    publisher: Arc::clone(&self.publisher),
                    queue: Arc::clone(&self.queue),
                    ephemeral: self.ephemeral,
                };
                Some(Ok(Delivered::new(message, attempt, settle).boxed()))
            }
            Some(Err(error)) => self.lost(amqp_error(error)),
            None => {
                let queue = self.queue.to_string();
                self.lost(BusError::backend(
                    "rabbitmq",
                    RabbitMqError::ConsumerCancelled(queue),
                ))
            }
        }
    }

    async fn close(mut self: Box<Self>) -> Result<(), BusError> {
        match self.consumer.take() {
            Some((channel, _)) if channel.status().connected() => {
                let closing = async {
                    if self.ephemeral {
                        // Unsettled deliveries go with the queue: the group is this instance's.
                        Topology::delete_group(&channel, &self.queue).await?;
                    }
                    close(&channel).await
                };
                within(self.publisher.timeout(), closing).await
            }
            _ => Ok(()),
        }
    }
}

async fn close(channel: &Channel) -> Result<(), BusError> {
    channel.close(200, "done".into()).await.map_err(amqp_error)
}
