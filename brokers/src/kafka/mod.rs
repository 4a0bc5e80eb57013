//! The Kafka backend (`rdkafka`, librdkafka built in).
//!
//! Topics: each event type's topic is a Kafka topic, created with the admin API (partitions
//! and replication from `KAFKA_TOPIC_PARTITIONS` and `KAFKA_REPLICATION_FACTOR`) before the
//! first publish or subscribe; under `EVENT_BUS_TOPOLOGY=existing` the backend creates none,
//! and a topic missing from the cluster's metadata is `BusError::MissingTopology`. Subscribing
//! also makes (or checks) the dead-letter topic, so `eventbus setup` provisions it. A refused
//! identity, action or certificate is `BusError::Access`. A record's key is the aggregate id, so one aggregate's events
//! share a partition and keep their order; the message's headers are record headers.
//! Publishing waits for the acknowledgement of all in-sync replicas; the producer batches
//! with `KAFKA_LINGER_MS` and `KAFKA_BATCH_SIZE` and is idempotent with
//! `KAFKA_ENABLE_IDEMPOTENCE`.
//!
//! Consuming: each subscription's consumer group is a Kafka consumer group, starting at the
//! earliest offset. Offsets are committed only up to the first record of a partition whose
//! outcome is not final, so a crashed or closed member never skips an event: its group's next
//! member gets everything unsettled again.
//!
//! Retries: without ordering, a nacked record is copied to the group's retry topic
//! `{topic}.retry.{group}` with the headers `x-retry-attempts`, `x-retry-due-at` and
//! `x-retry-original-topic`, then settled; the group consumes its retry topic too and holds each
//! copy until it is due. With ordering on, a member hands out one record per key at a time and
//! retries a nacked record itself (its offset stays uncommitted), so later records of that key
//! wait. The bus dead-letters to `{prefix}-dead-letter` like any other topic.

mod access;
mod admin;
mod broker;
mod context;
mod delivery;
mod headers;
mod offsets;
mod options;
mod publisher;
mod subscription;

use std::sync::Arc;
use std::time::Duration;

use event_bus_core::{BusError, BusSettings};
use rdkafka::types::RDKafkaErrorCode;

use crate::registry::{Backend, BackendError, Connected};

pub use broker::KafkaBroker;
pub use options::{KafkaOptions, VARIABLES};

/// The Kafka backend, `EVENT_BUS_TYPE=kafka`.
pub const BACKEND: Backend = Backend {
    name: "kafka",
    variables: VARIABLES,
    connect: |settings| Box::pin(connect(settings)),
};

/// Connects the Kafka backend that `settings` describe.
pub async fn connect(settings: &BusSettings) -> Result<Connected, BackendError> {
    let options = KafkaOptions::from_settings(settings)?;
    Ok(Connected::broker(Arc::new(
        KafkaBroker::connect(options).await?,
    )))
}

/// The bus's error for a client error: a refused identity, action or certificate is
/// [`BusError::Access`], the rest [`BusError::Backend`].
fn kafka_error(error: rdkafka::error::KafkaError) -> BusError {
    let text = error.to_string();
    match error
        .rdkafka_error_code()
        .and_then(|code| access::access_kind(code, &text))
    {
        Some(kind) => BusError::access("kafka", kind, text),
        None => BusError::backend("kafka", error),
    }
}

/// What went wrong on the Kafka side.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// No broker of the bootstrap list answered in time.
    #[error("no Kafka broker at {servers} answered within {timeout:?}: {source}")]
    Unreachable {
        /// `KAFKA_BOOTSTRAP_SERVERS`.
        servers: String,
        /// How long it waited.
        timeout: Duration,
        /// The client's error.
        source: rdkafka::error::KafkaError,
    },
    /// The admin API refused to create a topic.
    #[error("creating topic `{topic}` failed: {code}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The broker's error code.
        code: RDKafkaErrorCode,
    },
    /// A record was not acknowledged.
    #[error("publishing to `{topic}` failed: {source}")]
    Publish {
        /// The topic.
        topic: String,
        /// The client's error.
        source: rdkafka::error::KafkaError,
    },
    /// A batch could not be published because its topic could not be created.
    #[error("{0}")]
    Batch(Arc<BusError>),
}
