//! Publishing: one record per message, keyed by aggregate id, each awaited until the broker
//! acknowledged it; batches are enqueued together so the producer's linger can group them.

use std::sync::Arc;
use std::time::Duration;

use event_bus_core::kit::ClosedFlag;
use event_bus_core::{BusError, Message};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

use super::access::{AccessWatch, WatchedContext, access_kind};
use super::admin::TopicAdmin;
use super::headers::record_headers;
use super::options::KafkaOptions;
use super::{KafkaError, kafka_error};

/// The producer shared by a broker's publishing and its subscriptions' retries.
pub(super) struct KafkaPublisher {
    producer: FutureProducer<WatchedContext>,
    /// Refusals any client of the broker reported.
    watch: Arc<AccessWatch>,
    admin: Arc<TopicAdmin>,
    delivery_timeout: Duration,
    /// The bus's message size limit.
    max_message_bytes: usize,
    closed: ClosedFlag,
}

impl KafkaPublisher {
    pub(super) fn new(
        options: &KafkaOptions,
        admin: Arc<TopicAdmin>,
        watch: Arc<AccessWatch>,
    ) -> Result<Self, BusError> {
        let producer = options
            .producer_config()
            .create_with_context(WatchedContext {
                watch: Arc::clone(&watch),
            })
            .map_err(kafka_error)?;
        Ok(Self {
            producer,
            watch,
            admin,
            delivery_timeout: options.delivery_timeout,
            max_message_bytes: options.max_message_bytes,
            closed: ClosedFlag::default(),
        })
    }

    pub(super) fn admin(&self) -> &TopicAdmin {
        &self.admin
    }

    pub(super) fn producer(&self) -> &FutureProducer<WatchedContext> {
        &self.producer
    }

    pub(super) fn watch(&self) -> &Arc<AccessWatch> {
        &self.watch
    }

    /// Refuses a message larger than the bus's limit, which the producer and the broker might
    /// refuse too, with the bus's own error.
    fn check_size(&self, message: &Message) -> Result<(), BusError> {
        if message.size() > self.max_message_bytes {
            return Err(BusError::MessageTooLarge {
                size: message.size(),
                limit: self.max_message_bytes,
            });
        }
        Ok(())
    }

    /// Sends one message, with `extra` headers, and waits for the broker's acknowledgement.
    pub(super) async fn send(
        &self,
        topic: &str,
        message: &Message,
        extra: &[(&str, String)],
    ) -> Result<(), BusError> {
        let headers = record_headers(message, extra);
        let mut record = FutureRecord::to(topic)
            .payload(message.payload.as_ref())
            .headers(headers);
        if let Some(key) = &message.key {
            record = record.key(key.as_str());
        }
        self.producer
            .send(record, Timeout::After(self.delivery_timeout))
            .await
            .map(drop)
            .map_err(|(source, _)| {
                if let Some(kind) = source
                    .rdkafka_error_code()
                    .and_then(|code| access_kind(code, ""))
                {
                    return BusError::access(
                        "kafka",
                        kind,
                        format!("publishing to `{topic}`: {source}"),
                    );
                }
                BusError::backend(
                    "kafka",
                    KafkaError::Publish {
                        topic: topic.to_owned(),
                        source,
                    },
                )
            })
    }

    /// Publishes one message of the bus.
    pub(super) async fn publish(&self, topic: &str, message: &Message) -> Result<(), BusError> {
        self.closed.ensure_open("publisher")?;
        self.check_size(message)?;
        self.admin.ensure(&[topic]).await?;
        self.send(topic, message, &[]).await
    }

    /// Publishes messages in order (records are enqueued in order, so per-key order holds)
    /// and waits for every acknowledgement.
    pub(super) async fn publish_batch(
        &self,
        topic: &str,
        messages: &[Message],
    ) -> Vec<Result<(), BusError>> {
        if let Some(refused) = self.closed.refuse_batch("publisher", messages.len()) {
            return refused;
        }
        if let Err(error) = self.admin.ensure(&[topic]).await {
            let error = Arc::new(error);
            return messages
                .iter()
                .map(|_| {
                    Err(BusError::backend(
                        "kafka",
                        KafkaError::Batch(Arc::clone(&error)),
                    ))
                })
                .collect();
        }
        futures::future::join_all(messages.iter().map(|message| async move {
            self.check_size(message)?;
            self.send(topic, message, &[]).await
        }))
        .await
    }

    /// Refuses further publishing and flushes whatever the producer still holds.
    pub(super) async fn close(&self) -> Result<(), BusError> {
        self.closed.close();
        let producer = self.producer.clone();
        let timeout = self.delivery_timeout;
        tokio::task::spawn_blocking(move || producer.flush(Timeout::After(timeout)))
            .await
            .map_err(|error| BusError::backend("kafka", error))?
            .map_err(kafka_error)
    }
}
