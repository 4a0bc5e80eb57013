//! Publishing with confirms on one channel, tried again on a new connection after a failure.

use std::sync::Arc;
use std::time::Duration;

use event_bus_core::{BusError, Message, TopologyItem};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation, PublisherConfirm};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::connector::Connector;
use super::properties::properties;
use super::topology::{Topology, retry_step};
use super::{RabbitMqError, amqp_error, within};

/// First pause after a failed publish; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(50);
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// Where a message goes: an exchange and a routing key.
#[derive(Clone, Copy, Debug)]
pub(super) struct Route<'a> {
    pub(super) exchange: &'a str,
    pub(super) routing_key: &'a str,
    /// The message must reach a queue: a message the broker returns, unroutable, is
    /// [`BusError::MissingTopology`] naming the queue `routing_key`.
    pub(super) to_queue: bool,
}

/// Publishes persistent messages and waits for the broker's confirm.
pub(super) struct ConfirmedPublisher {
    connector: Arc<Connector>,
    topology: Topology,
    channel: Mutex<Option<Channel>>,
    timeout: Duration,
}

impl ConfirmedPublisher {
    pub(super) fn new(connector: Arc<Connector>, topology: Topology, timeout: Duration) -> Self {
        Self {
            connector,
            topology,
            channel: Mutex::new(None),
            timeout,
        }
    }

    /// The topology this publisher declares.
    pub(super) fn topology(&self) -> &Topology {
        &self.topology
    }

    /// How long the broker may take to answer: a publish, and every other call on it.
    pub(super) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Publishes `message` to a topic of the exchange.
    pub(super) async fn publish_to_topic(
        &self,
        topic: &str,
        message: &Message,
    ) -> Result<(), BusError> {
        let route = Route {
            exchange: &self.topology.exchange,
            routing_key: topic,
            to_queue: false,
        };
        self.publish(route, || properties(message, None), &message.payload)
            .await
    }

    /// Publishes every message to a topic, confirms awaited together; a message whose first
    /// try failed is published again on its own. Like [`publish`](Self::publish), it returns by
    /// the publish timeout, whatever the connection does: what is unconfirmed then is an error.
    pub(super) async fn publish_batch_to_topic(
        &self,
        topic: &str,
        messages: &[Message],
    ) -> Vec<Result<(), BusError>> {
        let route = Route {
            exchange: &self.topology.exchange,
            routing_key: topic,
            to_queue: false,
        };
        let deadline = Instant::now() + self.timeout;
        let mut pending = Vec::with_capacity(messages.len());
        let sending = async {
            if let Ok(channel) = self.channel().await {
                for message in messages {
                    let props = properties(message, None);
                    pending.push(send(&channel, route, props, &message.payload).await.ok());
                }
            }
        };
        let mut answering = tokio::time::timeout_at(deadline, sending).await.is_ok();
        if !answering {
            self.forget_connection().await;
        }
        let mut results = Vec::with_capacity(messages.len());
        for (index, message) in messages.iter().enumerate() {
            let first_try = match pending.get_mut(index).and_then(Option::take) {
                Some(confirm) if answering => {
                    match tokio::time::timeout_at(deadline, confirmed(route, confirm)).await {
                        Ok(confirmed) => confirmed,
                        Err(_) => {
                            answering = false;
                            self.forget_connection().await;
                            Err(BusError::backend(
                                "rabbitmq",
                                RabbitMqError::Unanswered(self.timeout),
                            ))
                        }
                    }
                }
                _ => Err(BusError::Closed("channel")),
            };
            results.push(match first_try {
                Ok(()) => Ok(()),
                Err(error) if Instant::now() >= deadline => Err(self.unanswered(route, error)),
                Err(_) => {
                    self.publish_by(
                        route,
                        || properties(message, None),
                        &message.payload,
                        deadline,
                    )
                    .await
                }
            });
        }
        results
    }

    /// Publishes a message with the properties `properties` makes (once per try, so a first
    /// try that succeeds copies nothing); failures are tried again on a new channel (and
    /// connection) with growing pauses until the publish timeout has passed, except refused
    /// access and missing topology, which trying again does not fix. It returns by the publish
    /// timeout, whatever the connection does.
    pub(super) async fn publish(
        &self,
        route: Route<'_>,
        properties: impl Fn() -> BasicProperties,
        payload: &[u8],
    ) -> Result<(), BusError> {
        self.publish_by(route, properties, payload, Instant::now() + self.timeout)
            .await
    }

    /// [`publish`](Self::publish), tried until `deadline`.
    async fn publish_by(
        &self,
        route: Route<'_>,
        properties: impl Fn() -> BasicProperties,
        payload: &[u8],
        deadline: Instant,
    ) -> Result<(), BusError> {
        let mut pause = FIRST_PAUSE;
        loop {
            // An attempt on a connection that went silent (a server restart can leave one
            // looking open) would wait for ever: it ends at the deadline and the connection is
            // opened again.
            let attempt = self.publish_once(route, properties(), payload);
            let error = match tokio::time::timeout_at(deadline, attempt).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(error)) if error.is_permanent() => return Err(error),
                Ok(Err(error)) => error,
                Err(_) => {
                    self.forget_connection().await;
                    BusError::backend("rabbitmq", RabbitMqError::Unanswered(self.timeout))
                }
            };
            if Instant::now() + pause > deadline {
                return Err(self.unanswered(route, error));
            }
            tracing::debug!(%error, routing_key = route.routing_key, "rabbitmq: publish failed; trying again");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }

    /// The retry queue of `queue` for `delay` (the nearest step of the retry ladder), declared
    /// first under [`TopologyMode::Create`](event_bus_core::TopologyMode::Create); under
    /// `Existing` it is the one `eventbus setup` made. An instance-scoped group's retry queue
    /// expires after its last use, as the group's queue does.
    pub(super) async fn retry_queue(
        &self,
        queue: &str,
        delay: Duration,
        ephemeral: bool,
    ) -> Result<String, BusError> {
        let step = retry_step(delay);
        if !self.topology.mode.creates() {
            return Ok(Topology::retry_queue(queue, step));
        }
        let declared = async {
            let channel = self.channel().await?;
            self.topology
                .declare_retry_queue(&channel, queue, step, ephemeral)
                .await
        };
        within(self.timeout, declared).await
    }

    /// Drops the channel and the connection, which went silent: the next publish opens both
    /// again.
    async fn forget_connection(&self) {
        *self.channel.lock().await = None;
        self.connector.reset().await;
    }

    /// Publishing to `route` kept failing until the publish timeout, the last time with
    /// `error`.
    fn unanswered(&self, route: Route<'_>, error: BusError) -> BusError {
        BusError::backend(
            "rabbitmq",
            RabbitMqError::PublishFailed {
                routing_key: route.routing_key.to_owned(),
                timeout: self.timeout,
                source: Box::new(error),
            },
        )
    }

    async fn publish_once(
        &self,
        route: Route<'_>,
        properties: BasicProperties,
        payload: &[u8],
    ) -> Result<(), BusError> {
        let channel = self.channel().await?;
        let confirm = send(&channel, route, properties, payload).await?;
        confirmed(route, confirm).await
    }

    /// The confirm-mode channel, opened when there is none or the last one was closed, with
    /// the exchange declared (or, under `Existing`, found).
    async fn channel(&self) -> Result<Channel, BusError> {
        let mut slot = self.channel.lock().await;
        if let Some(channel) = slot.as_ref().filter(|c| c.status().connected()) {
            return Ok(channel.clone());
        }
        *slot = None;
        let channel = self.connector.channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(amqp_error)?;
        if self.topology.mode.creates() {
            self.topology.declare_exchange(&channel).await?;
        } else {
            self.topology.check_exchange(&channel).await?;
        }
        *slot = Some(channel.clone());
        Ok(channel)
    }
}

async fn send(
    channel: &Channel,
    route: Route<'_>,
    properties: BasicProperties,
    payload: &[u8],
) -> Result<PublisherConfirm, BusError> {
    channel
        .basic_publish(
            route.exchange.into(),
            route.routing_key.into(),
            BasicPublishOptions {
                mandatory: route.to_queue,
                ..BasicPublishOptions::default()
            },
            payload,
            properties,
        )
        .await
        .map_err(amqp_error)
}

async fn confirmed(route: Route<'_>, confirm: PublisherConfirm) -> Result<(), BusError> {
    match confirm.await.map_err(amqp_error)? {
        Confirmation::Ack(Some(_)) if route.to_queue => Err(BusError::missing(
            "rabbitmq",
            TopologyItem::new("queue", route.routing_key),
        )),
        Confirmation::Ack(_) | Confirmation::NotRequested => Ok(()),
        Confirmation::Nack(_) => Err(BusError::backend(
            "rabbitmq",
            RabbitMqError::Refused(route.routing_key.to_owned()),
        )),
    }
}
