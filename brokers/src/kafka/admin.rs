//! Creating topics before they are published to or subscribed to.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use event_bus_core::BusError;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use super::options::KafkaOptions;
use super::{KafkaError, kafka_error};

/// Creates missing topics with the configured partitions and replication, once per topic.
pub(super) struct TopicAdmin {
    client: AdminClient<DefaultClientContext>,
    known: Mutex<HashSet<String>>,
    partitions: i32,
    replication_factor: i32,
    /// `max.message.bytes` of created topics, in text as the admin API takes it.
    max_message_bytes: String,
    timeout: Duration,
}

impl TopicAdmin {
    pub(super) fn new(options: &KafkaOptions) -> Result<Self, BusError> {
        let client = options.producer_config().create().map_err(kafka_error)?;
        Ok(Self {
            client,
            known: Mutex::default(),
            partitions: options.partitions,
            replication_factor: options.replication_factor,
            max_message_bytes: options.record_size_limit().to_string(),
            timeout: options.connect_timeout,
        })
    }

    /// Makes sure every topic exists, taking records as large as the producer sends; a topic
    /// that exists already is fine.
    pub(super) async fn ensure(&self, topics: &[&str]) -> Result<(), BusError> {
        let missing: Vec<&str> = {
            let known = self.known.lock().expect("topic cache");
            topics
                .iter()
                .copied()
                .filter(|topic| !known.contains(*topic))
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let new: Vec<NewTopic<'_>> = missing
            .iter()
            .map(|topic| {
                NewTopic::new(
                    topic,
                    self.partitions,
                    TopicReplication::Fixed(self.replication_factor),
                )
                .set("max.message.bytes", &self.max_message_bytes)
            })
            .collect();
        let options = AdminOptions::new()
            .request_timeout(Some(self.timeout))
            .operation_timeout(Some(self.timeout));
        let results = self
            .client
            .create_topics(&new, &options)
            .await
            .map_err(kafka_error)?;
        for result in results {
            match result {
                Ok(topic) | Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    self.known.lock().expect("topic cache").insert(topic);
                }
                Err((topic, code)) => {
                    return Err(BusError::backend(
                        "kafka",
                        KafkaError::CreateTopic { topic, code },
                    ));
                }
            }
        }
        Ok(())
    }
}
