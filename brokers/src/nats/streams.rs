//! Creating a topic's stream before it is published to, and a consumer group's durable pull
//! consumer before it is pulled from.

use std::collections::HashSet;
use std::sync::Mutex;

use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::{self, stream};
use event_bus_core::{SubscriptionConfig, TopologyMode};

use super::options::{NatsOptions, StreamStorage};
use super::violations::Violations;
use super::{NatsError, names};

/// The consumer's `max_deliver` is this many times the subscription's attempts: room for the
/// bus to dead-letter, with retries when publishing the dead letter fails.
const MAX_DELIVER_FACTOR: u32 = 4;
/// An instance-scoped group's consumer left unused this long (its owner died) is removed by
/// the server.
const EPHEMERAL_INACTIVE: std::time::Duration = std::time::Duration::from_secs(60);

/// Creates missing streams once per topic, and the consumers of groups; under
/// [`TopologyMode::Existing`] only looks them up.
pub(super) struct Streams {
    jetstream: jetstream::Context,
    template: stream::Config,
    ack_wait: std::time::Duration,
    topology: TopologyMode,
    violations: Violations,
    known: Mutex<HashSet<String>>,
}

impl Streams {
    pub(super) fn new(
        jetstream: jetstream::Context,
        options: &NatsOptions,
        violations: Violations,
    ) -> Self {
        let template = stream::Config {
            storage: match options.storage {
                StreamStorage::File => stream::StorageType::File,
                StreamStorage::Memory => stream::StorageType::Memory,
            },
            num_replicas: options.replicas,
            max_age: options.max_age.unwrap_or_default(),
            retention: stream::RetentionPolicy::Limits,
            ..Default::default()
        };
        Self {
            jetstream,
            template,
            ack_wait: options.ack_wait,
            topology: options.topology,
            violations,
            known: Mutex::default(),
        }
    }

    /// How long a delivery may stay unacknowledged before the server redelivers it.
    pub(super) fn ack_wait(&self) -> std::time::Duration {
        self.ack_wait
    }

    /// Makes sure the topic's stream exists; returns its name, which is also its subject.
    pub(super) async fn ensure(&self, topic: &str) -> Result<String, NatsError> {
        let name = names::stream(topic);
        if self.known.lock().expect("stream cache").contains(&name) {
            return Ok(name);
        }
        if self.topology.creates() {
            self.create(&name).await?;
        } else {
            self.require(&name).await?;
        }
        self.known
            .lock()
            .expect("stream cache")
            .insert(name.clone());
        Ok(name)
    }

    /// Forgets that the topic's stream exists (it was deleted behind the bus's back), so the
    /// next [`ensure`](Self::ensure) creates it again.
    pub(super) fn forget(&self, topic: &str) {
        self.known
            .lock()
            .expect("stream cache")
            .remove(&names::stream(topic));
    }

    async fn create(&self, name: &str) -> Result<(), NatsError> {
        let config = stream::Config {
            name: name.to_owned(),
            subjects: vec![name.to_owned()],
            ..self.template.clone()
        };
        self.jetstream
            .get_or_create_stream(config)
            .await
            .map(drop)
            .map_err(|source| {
                match self
                    .violations
                    .refused(&format!("$JS.API.STREAM.CREATE.{name}"))
                {
                    Some(subject) => NatsError::Refused { subject },
                    None => NatsError::Stream {
                        stream: name.to_owned(),
                        source,
                    },
                }
            })
    }

    /// Fails with [`NatsError::MissingStream`] unless the stream exists.
    async fn require(&self, name: &str) -> Result<(), NatsError> {
        match self.jetstream.get_stream(name).await {
            Ok(_) => Ok(()),
            Err(error) => match error.kind() {
                jetstream::context::GetStreamErrorKind::JetStream(status)
                    if status.error_code() == ErrorCode::STREAM_NOT_FOUND =>
                {
                    Err(NatsError::MissingStream {
                        stream: name.to_owned(),
                    })
                }
                _ => Err(NatsError::LookUpStream {
                    stream: name.to_owned(),
                    source: error,
                }),
            },
        }
    }

    /// The durable pull consumer of `config`'s group on its topic's stream, created (or
    /// updated to `config`) as needed, with the dead-letter topic's stream; under [`TopologyMode::Existing`], as it exists.
    pub(super) async fn consumer(
        &self,
        config: &SubscriptionConfig,
    ) -> Result<PullConsumer, NatsError> {
        let stream_name = self.ensure(&config.topic).await?;
        let name = names::consumer(&config.consumer_group);
        if !self.topology.creates() {
            return self.existing_consumer(&stream_name, name).await;
        }
        if let Some(dead_letters) = &config.dead_letter_topic {
            self.ensure(dead_letters).await?;
        }
        let consumer = pull::Config {
            durable_name: Some(name.clone()),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            max_deliver: match config.dead_letter_topic {
                Some(_) => i64::from(
                    config
                        .max_delivery_attempts
                        .saturating_mul(MAX_DELIVER_FACTOR),
                ),
                None => -1,
            },
            max_ack_pending: if config.ordering { 1 } else { 0 },
            inactive_threshold: if config.ephemeral {
                EPHEMERAL_INACTIVE
            } else {
                std::time::Duration::ZERO
            },
            ..Default::default()
        };
        self.jetstream
            .create_consumer_on_stream(consumer, &stream_name)
            .await
            .map_err(
                |source| match self.violations.refused("$JS.API.CONSUMER.") {
                    Some(subject) => NatsError::Refused { subject },
                    None => NatsError::Consumer {
                        stream: stream_name.clone(),
                        consumer: name,
                        source,
                    },
                },
            )
    }

    async fn existing_consumer(
        &self,
        stream: &str,
        name: String,
    ) -> Result<PullConsumer, NatsError> {
        match self
            .jetstream
            .get_consumer_from_stream::<pull::Config, _, _>(&name, stream)
            .await
        {
            Ok(consumer) => Ok(consumer),
            Err(error) => match error.kind() {
                jetstream::stream::ConsumerErrorKind::JetStream(status)
                    if status.error_code() == ErrorCode::CONSUMER_NOT_FOUND =>
                {
                    Err(NatsError::MissingConsumer {
                        stream: stream.to_owned(),
                        consumer: name,
                    })
                }
                _ => Err(NatsError::Consumer {
                    stream: stream.to_owned(),
                    consumer: name,
                    source: error,
                }),
            },
        }
    }

    /// Removes the durable consumer of `config`'s group (an instance-scoped group whose owner
    /// closed it).
    pub(super) async fn delete_consumer(
        &self,
        config: &SubscriptionConfig,
    ) -> Result<(), NatsError> {
        let stream_name = names::stream(&config.topic);
        let name = names::consumer(&config.consumer_group);
        let deleted: Result<(), async_nats::Error> = async {
            let stream = self.jetstream.get_stream(&stream_name).await?;
            stream.delete_consumer(&name).await?;
            Ok(())
        }
        .await;
        deleted.map_err(|source| NatsError::DeleteConsumer {
            stream: stream_name,
            consumer: name,
            source,
        })
    }
}
