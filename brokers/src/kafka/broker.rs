//! The Kafka broker: connecting, publishing and opening group subscriptions.

use std::sync::Arc;

use async_trait::async_trait;
use event_bus_core::{
    Broker, BusError, Capabilities, Message, Publisher, Subscriber, Subscription,
    SubscriptionConfig,
};
use rdkafka::producer::Producer;

use super::KafkaError;
use super::admin::TopicAdmin;
use super::options::KafkaOptions;
use super::publisher::KafkaPublisher;
use super::subscription::KafkaSubscription;

/// Publishes to and consumes from a Kafka cluster.
pub struct KafkaBroker {
    options: KafkaOptions,
    publisher: Arc<KafkaPublisher>,
}

impl KafkaBroker {
    /// Connects and checks that the cluster answers within the connect timeout.
    pub async fn connect(options: KafkaOptions) -> Result<Self, BusError> {
        let admin = Arc::new(TopicAdmin::new(&options)?);
        let publisher = Arc::new(KafkaPublisher::new(&options, admin)?);
        let producer = publisher.producer().clone();
        let timeout = options.connect_timeout;
        let servers = options.bootstrap_servers.clone();
        tokio::task::spawn_blocking(move || producer.client().fetch_metadata(None, timeout))
            .await
            .map_err(|error| BusError::backend("kafka", error))?
            .map_err(|source| {
                BusError::backend(
                    "kafka",
                    KafkaError::Unreachable {
                        servers,
                        timeout,
                        source,
                    },
                )
            })?;
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
        Capabilities {
            consumer_groups: true,
            per_key_ordering: true,
            persistent: true,
            new_subscriber_receives_old_messages: true,
            can_restart_server: false,
        }
    }
}
