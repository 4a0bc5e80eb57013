//! Creating topics before they are published to or subscribed to, or under
//! `EVENT_BUS_TOPOLOGY=existing` checking that they exist.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use event_bus_core::{BusError, TopologyItem, TopologyMode};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::types::RDKafkaErrorCode;

use super::access::{AccessWatch, WatchedContext, access_kind};
use super::options::KafkaOptions;
use super::{KafkaError, kafka_error};

/// Makes sure topics exist, once per topic: creates the missing ones with the configured
/// partitions and replication, or under [`TopologyMode::Existing`] reports them missing.
pub(super) struct TopicAdmin {
    client: Arc<AdminClient<WatchedContext>>,
    topology: TopologyMode,
    known: Mutex<HashSet<String>>,
    partitions: i32,
    replication_factor: i32,
    /// `max.message.bytes` of created topics, in text as the admin API takes it.
    max_message_bytes: String,
    timeout: Duration,
}

impl TopicAdmin {
    pub(super) fn new(options: &KafkaOptions, watch: Arc<AccessWatch>) -> Result<Self, BusError> {
        let client = options
            .producer_config()
            .create_with_context(WatchedContext { watch })
            .map_err(kafka_error)?;
        Ok(Self {
            client: Arc::new(client),
            topology: options.topology,
            known: Mutex::default(),
            partitions: options.partitions,
            replication_factor: options.replication_factor,
            max_message_bytes: options.record_size_limit().to_string(),
            timeout: options.connect_timeout,
        })
    }

    /// Makes sure every topic exists: creates the missing ones (taking records as large as the
    /// producer sends), or under [`TopologyMode::Existing`] fails with
    /// [`BusError::MissingTopology`] naming the first missing one.
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
        if !self.topology.creates() {
            for topic in missing {
                self.check(topic).await?;
            }
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
                    if let Some(kind) = access_kind(code, "") {
                        return Err(BusError::access(
                            "kafka",
                            kind,
                            format!("creating topic `{topic}`: {code}"),
                        ));
                    }
                    return Err(BusError::backend(
                        "kafka",
                        KafkaError::CreateTopic { topic, code },
                    ));
                }
            }
        }
        Ok(())
    }

    /// Asks the cluster's metadata whether `topic` exists, without creating it.
    async fn check(&self, topic: &str) -> Result<(), BusError> {
        let client = Arc::clone(&self.client);
        let name = topic.to_owned();
        let timeout = self.timeout;
        let error = tokio::task::spawn_blocking(move || {
            let metadata = client.inner().fetch_metadata(Some(&name), timeout)?;
            Ok::<_, rdkafka::error::KafkaError>(
                metadata
                    .topics()
                    .iter()
                    .find(|found| found.name() == name)
                    .map_or(Some(RDKafkaErrorCode::UnknownTopicOrPartition), |found| {
                        found.error().map(RDKafkaErrorCode::from)
                    }),
            )
        })
        .await
        .map_err(|error| BusError::backend("kafka", error))?
        .map_err(kafka_error)?;
        match error {
            Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
                return Err(BusError::missing(
                    "kafka",
                    TopologyItem::new("topic", topic),
                ));
            }
            Some(code) => {
                if let Some(kind) = access_kind(code, "") {
                    return Err(BusError::access(
                        "kafka",
                        kind,
                        format!("describing topic `{topic}`: {code}"),
                    ));
                }
            }
            None => {}
        }
        // It exists (a leader may still be on its way).
        self.known
            .lock()
            .expect("topic cache")
            .insert(topic.to_owned());
        Ok(())
    }
}
