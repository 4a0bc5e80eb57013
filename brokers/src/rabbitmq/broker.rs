//! The RabbitMQ broker: options, publishing to the topic exchange, and opening group
//! subscriptions.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use event_bus_core::kit::ClosedFlag;
use event_bus_core::redact::redacted_url;
use event_bus_core::{
    Broker, BusError, Capabilities, Message, Publisher, Subscriber, Subscription,
    SubscriptionConfig, TopologyItem, TopologyMode,
};

use super::connector::{Connector, RabbitMqTls};
use super::publisher::ConfirmedPublisher;
use super::subscription::RabbitMqSubscription;
use super::topology::Topology;

/// How the RabbitMQ backend connects and what it declares.
#[derive(Clone)]
pub struct RabbitMqOptions {
    /// AMQP URL, such as `amqp://guest:guest@127.0.0.1:5672/%2f`, or `amqps://…` for TLS.
    pub url: String,
    /// CA and client certificate files for `amqps://`.
    pub tls: RabbitMqTls,
    /// The topic exchange events are published to.
    pub exchange: String,
    /// How long a publish is tried again while the broker is unreachable before it fails.
    pub publish_timeout: Duration,
    /// Queues unused this long are deleted by the broker; `None` keeps them.
    pub queue_expiry: Option<Duration>,
    /// The dead-letter topic and the group that keeps its messages, whose queue is declared
    /// when connecting, so no dead letter waits with the unrouted messages.
    pub dead_letters: Option<(String, String)>,
    /// Whether the backend declares exchanges, queues and bindings (`EVENT_BUS_TOPOLOGY`).
    /// Under [`TopologyMode::Existing`] it declares, binds and deletes nothing: it checks
    /// with passive declares, which need no `configure` permission, that what it uses exists.
    pub topology: TopologyMode,
}

impl std::fmt::Debug for RabbitMqOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitMqOptions")
            .field("url", &redacted_url(&self.url))
            .field("tls", &self.tls)
            .field("exchange", &self.exchange)
            .field("publish_timeout", &self.publish_timeout)
            .field("queue_expiry", &self.queue_expiry)
            .field("dead_letters", &self.dead_letters)
            .field("topology", &self.topology)
            .finish()
    }
}

/// Publishes to and consumes from RabbitMQ.
pub struct RabbitMqBroker {
    connector: Arc<Connector>,
    publisher: Arc<ConfirmedPublisher>,
    closed: ClosedFlag,
}

impl RabbitMqBroker {
    /// Connects to the server; a lost connection is opened again when next needed. Refused
    /// credentials are [`BusError::Access`] with [`AccessKind::Credentials`], an untrusted
    /// server certificate one with [`AccessKind::Certificate`], both without trying again.
    ///
    /// [`AccessKind::Credentials`]: event_bus_core::AccessKind::Credentials
    /// [`AccessKind::Certificate`]: event_bus_core::AccessKind::Certificate
    pub async fn connect(options: RabbitMqOptions) -> Result<Self, BusError> {
        let connector = Arc::new(Connector::open(&options.url, &options.tls).await?);
        let topology = Topology {
            exchange: options.exchange,
            queue_expiry: options.queue_expiry,
            mode: options.topology,
        };
        let publisher = Arc::new(ConfirmedPublisher::new(
            Arc::clone(&connector),
            topology,
            options.publish_timeout,
        ));
        let dead_letters = options
            .dead_letters
            .as_ref()
            .filter(|_| options.topology.creates());
        if let Some((topic, keeper)) = dead_letters {
            let queue = Topology::group_queue(topic, keeper);
            let declared = match connector.channel().await {
                Ok(channel) => {
                    publisher
                        .topology()
                        .declare_group(&channel, topic, &queue, false)
                        .await
                }
                Err(error) => Err(error),
            };
            // An identity without `configure` permission may not declare it; subscribing
            // tries again.
            if let Err(error) = declared {
                tracing::warn!(%error, %queue, "rabbitmq: the dead-letter queue could not be declared now");
            }
        }
        Ok(Self {
            connector,
            publisher,
            closed: ClosedFlag::default(),
        })
    }
}

#[async_trait]
impl Publisher for RabbitMqBroker {
    async fn publish(&self, topic: &str, message: Message) -> Result<(), BusError> {
        self.closed.ensure_open("publisher")?;
        self.publisher.publish_to_topic(topic, &message).await
    }

    async fn publish_batch(
        &self,
        topic: &str,
        messages: Vec<Message>,
    ) -> Vec<Result<(), BusError>> {
        if let Some(refused) = self.closed.refuse_batch("publisher", messages.len()) {
            return refused;
        }
        self.publisher
            .publish_batch_to_topic(topic, &messages)
            .await
    }

    /// Every publish already waited for its confirm, so nothing is buffered.
    async fn close(&self) -> Result<(), BusError> {
        self.closed.close();
        Ok(())
    }
}

#[async_trait]
impl Subscriber for RabbitMqBroker {
    async fn subscribe(
        &self,
        config: &SubscriptionConfig,
    ) -> Result<Box<dyn Subscription>, BusError> {
        self.publisher
            .topology()
            .mode
            .check_instance_scoped(self.name(), config)?;
        let subscription = RabbitMqSubscription::open(
            Arc::clone(&self.connector),
            Arc::clone(&self.publisher),
            config,
        )
        .await?;
        Ok(Box::new(subscription))
    }
}

impl Broker for RabbitMqBroker {
    fn name(&self) -> &'static str {
        "rabbitmq"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            consumer_groups: true,
            per_key_ordering: false,
            persistent: true,
            new_subscriber_receives_old_messages: false,
            can_restart_server: false,
        }
    }

    fn topology(&self, config: &SubscriptionConfig) -> Vec<TopologyItem> {
        self.publisher.topology().items(config)
    }
}
