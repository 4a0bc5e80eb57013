//! The Kafka broker: connecting, publishing and opening group subscriptions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use event_bus_core::{
    Broker, BusError, Capabilities, Message, Publisher, Subscriber, Subscription,
    SubscriptionConfig, TopologyItem,
};
use rdkafka::producer::Producer;

use super::KafkaError;
use super::access::AccessWatch;
use super::admin::TopicAdmin;
use super::options::KafkaOptions;
use super::publisher::KafkaPublisher;
use super::subscription::{KafkaSubscription, dead_letter_topic, retry_topic};

/// Longest single wait for the cluster's metadata while connecting; between waits the
/// connect looks for a refusal (wrong password, untrusted certificate), which librdkafka
/// would otherwise retry until the connect timeout.
const METADATA_STEP: Duration = Duration::from_millis(250);

/// Publishes to and consumes from a Kafka cluster.
pub struct KafkaBroker {
    options: KafkaOptions,
    publisher: Arc<KafkaPublisher>,
}

impl KafkaBroker {
    /// What the backend guarantees; a test that can restart its broker says so itself.
    pub const CAPABILITIES: Capabilities = Capabilities {
        consumer_groups: true,
        per_key_ordering: true,
        persistent: true,
        new_subscriber_receives_old_messages: true,
        can_restart_server: false,
    };

    /// Connects and checks that the cluster answers within the connect timeout; a refused
    /// identity or certificate fails at once with [`BusError::Access`].
    pub async fn connect(options: KafkaOptions) -> Result<Self, BusError> {
        let watch = Arc::new(AccessWatch::default());
        let admin = Arc::new(TopicAdmin::new(&options, Arc::clone(&watch))?);
        let publisher = Arc::new(KafkaPublisher::new(&options, admin, Arc::clone(&watch))?);
        let producer = publisher.producer().clone();
        let timeout = options.connect_timeout;
        let servers = options.bootstrap_servers.clone();
        tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + timeout;
            loop {
                let step = deadline
                    .saturating_duration_since(Instant::now())
                    .min(METADATA_STEP);
                let source = match producer.client().fetch_metadata(None, step) {
                    Ok(_) => return Ok(()),
                    Err(source) => source,
                };
                if let Some(refused) = watch.refused() {
                    return Err(refused);
                }
                if Instant::now() >= deadline {
                    return Err(BusError::backend(
                        "kafka",
                        KafkaError::Unreachable {
                            servers,
                            timeout,
                            source,
                        },
                    ));
                }
            }
        })
        .await
        .map_err(|error| BusError::backend("kafka", error))??;
        Ok(Self { options, publisher })
    }
}

#[async_trait]
impl Publisher for KafkaBroker {
    async fn publish(&self, topic: &str, message: Message) -> Result<(), BusError> {
        self.publisher.publish(topic, &message).await
    }

    async fn publish_batch(
        &self,
        topic: &str,
        messages: Vec<Message>,
    ) -> Vec<Result<(), BusError>> {
        self.publisher.publish_batch(topic, &messages).await
    }

    async fn close(&self) -> Result<(), BusError> {
        self.publisher.close().await
    }
}

#[async_trait]
impl Subscriber for KafkaBroker {
    async fn subscribe(
        &self,
        config: &SubscriptionConfig,
    ) -> Result<Box<dyn Subscription>, BusError> {
        self.options
            .topology
            .check_instance_scoped(self.name(), config)?;
        let subscription =
            KafkaSubscription::open(&self.options, Arc::clone(&self.publisher), config).await?;
        Ok(Box::new(subscription))
    }
}

impl Broker for KafkaBroker {
    fn name(&self) -> &'static str {
        "kafka"
    }

    fn capabilities(&self) -> Capabilities {
        Self::CAPABILITIES
    }

    /// The topic, the group's retry topic (none with ordering or for an instance's own
    /// group), the dead-letter topic, and the consumer group, which Kafka makes itself when
    /// its first member joins (an identity needs only Read on it).
    fn topology(&self, config: &SubscriptionConfig) -> Vec<TopologyItem> {
        let mut items = vec![TopologyItem::new("topic", &config.topic)];
        if let Some(retry) = retry_topic(config) {
            items.push(TopologyItem::new("topic", retry));
        }
        if let Some(dead_letters) = dead_letter_topic(config) {
            items.push(TopologyItem::new("topic", dead_letters));
        }
        items.push(TopologyItem::new("consumer group", &config.consumer_group));
        items
    }
}
