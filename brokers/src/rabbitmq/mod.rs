//! The RabbitMQ backend (AMQP 0-9-1 through `lapin`).
//!
//! Topology: one durable topic exchange per bus (named after `EVENT_BUS_TOPIC_PREFIX`), where
//! a message's routing key is its topic. Each consumer group is a durable quorum queue
//! `{topic}.{group}` bound to its topic; its members compete for it. Messages are persistent
//! and every publish waits for the broker's confirm. A member's prefetch is the subscription's
//! max in-flight, so the broker never hands out more than the member can handle.
//!
//! Retries: `Nack::Requeue` returns the message with `basic.nack` (the quorum queue counts the
//! delivery in `x-delivery-count`). `Nack::RequeueAfter` needs no plugin: the message is
//! republished, with its attempts so far in a header, to a retry queue `{queue}.retry.{ms}ms`
//! whose message TTL is the delay and whose dead-letter target is the group's queue; then the
//! original is acknowledged. Delays snap to the nearest step of a fixed ladder (the E6 series
//! 10, 15, 22, 33, 47, 68, 100, … ms), so a retry policy needs a few known queues, which
//! subscribing declares (and `eventbus setup` with it). A delivery dropped unsettled is
//! returned at once. The bus dead-letters to `{prefix}-dead-letter` like any other topic.
//!
//! Nothing is dropped silently: a message no queue is bound for (a topic nobody has subscribed
//! to yet) goes through the exchange's alternate exchange to the queue `{exchange}.unrouted`.
//! A group receives what is published after it first subscribed; earlier messages of its topic
//! are in that queue. The group that keeps dead letters (`dead_letter_subscription`) gets its
//! queue from every subscription that dead-letters, so dead letters never wait there.
//!
//! Least privilege: under `EVENT_BUS_TOPOLOGY=existing` the backend declares, binds and
//! deletes nothing; subscribing checks with passive declares (no `configure` permission
//! needed) that the exchange, the group's queue, the dead-letter queue and the retry queues
//! exist, and a missing one is [`BusError::MissingTopology`] naming it. TLS: an `amqps://` URL,
//! with `RABBITMQ_TLS_CA_FILE` (and a client certificate) as [`RabbitMqTls`] says. Refused
//! credentials, a refused action and an untrusted certificate are [`BusError::Access`].
//!
//! Connection loss: publishing reconnects with backoff and tries again for up to the publish
//! timeout, then fails with an error naming the cause; subscriptions reconnect on their next
//! read. Deliveries unsettled when the connection dropped are redelivered by the broker. Acks,
//! nacks and a consumer's opening and closing are given up after the publish timeout too.
//!
//! Limits: per-key order is not kept. Competing members, returned messages and retry queues
//! all reorder; a single member with max in-flight 1 and no retries sees publish order.

mod broker;
mod connector;
mod delivery;
mod properties;
mod publisher;
mod settings;
mod subscription;
mod topology;

use std::sync::Arc;
use std::time::Duration;

use event_bus_core::{AccessKind, BusError, BusSettings};

use crate::registry::{Backend, BackendError, Connected};

pub use broker::{RabbitMqBroker, RabbitMqOptions};
pub use connector::RabbitMqTls;
pub use settings::VARIABLES;

/// The RabbitMQ backend, `EVENT_BUS_TYPE=rabbitmq`.
pub const BACKEND: Backend = Backend {
    name: "rabbitmq",
    variables: VARIABLES,
    connect: |settings| Box::pin(connect(settings)),
};

/// Connects the RabbitMQ backend that `settings` describe.
pub async fn connect(settings: &BusSettings) -> Result<Connected, BackendError> {
    let options = RabbitMqOptions::from_settings(settings)?;
    Ok(Connected::broker(Arc::new(
        RabbitMqBroker::connect(options).await?,
    )))
}

/// The bus's error for a client error: a refused action (403 `ACCESS_REFUSED` on a channel,
/// 530 `NOT_ALLOWED` for a virtual host) is [`AccessKind::Permission`], an untrusted server
/// certificate [`AccessKind::Certificate`]; the rest is [`BusError::Backend`].
fn amqp_error(error: lapin::Error) -> BusError {
    access_error(&error, AccessKind::Permission)
        .unwrap_or_else(|| BusError::backend("rabbitmq", error))
}

/// The bus's error for a failed connection: as [`amqp_error`], except that `ACCESS_REFUSED`
/// while logging in is a refused user name or password, [`AccessKind::Credentials`].
fn connection_error(error: lapin::Error) -> BusError {
    access_error(&error, AccessKind::Credentials)
        .unwrap_or_else(|| BusError::backend("rabbitmq", error))
}

/// [`BusError::Access`] when `error` is a refusal; `refused` is what `ACCESS_REFUSED` means here.
fn access_error(error: &lapin::Error, refused: AccessKind) -> Option<BusError> {
    use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};
    let kind = match error.kind() {
        lapin::ErrorKind::ProtocolError(amqp) => match amqp.kind() {
            AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED) => refused,
            AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED) => AccessKind::Permission,
            _ => return None,
        },
        lapin::ErrorKind::IOError(io) if crate::access::names_a_certificate(io.as_ref()) => {
            AccessKind::Certificate
        }
        _ => return None,
    };
    Some(BusError::access("rabbitmq", kind, error.to_string()))
}

/// `call`, given up after `timeout`: a call whose connection drops as it is sent can stay
/// pending for good in `lapin`, and one on a silent server until the heartbeat fails.
async fn within<T>(
    timeout: Duration,
    call: impl Future<Output = Result<T, BusError>>,
) -> Result<T, BusError> {
    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or_else(|_| {
            Err(BusError::backend(
                "rabbitmq",
                RabbitMqError::Unanswered(timeout),
            ))
        })
}

/// True when the broker answered 404 `NOT_FOUND`: a passive declare found nothing.
fn is_not_found(error: &lapin::Error) -> bool {
    use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
    matches!(
        error.kind(),
        lapin::ErrorKind::ProtocolError(amqp)
            if *amqp.kind() == AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND)
    )
}

/// What went wrong on the RabbitMQ side, beyond the client library's own errors.
#[derive(Debug, thiserror::Error)]
pub enum RabbitMqError {
    /// The server did not complete the connection handshake in time.
    #[error("no connection to the server within {0:?}")]
    ConnectTimeout(std::time::Duration),
    /// The broker answered a publish with a negative confirm.
    #[error("the broker refused the message for `{0}`")]
    Refused(String),
    /// A publish attempt, an ack or nack, or a consumer's opening or closing got no answer
    /// within the publish timeout: its connection went silent or dropped the call.
    #[error("no answer from the server within {0:?}")]
    Unanswered(std::time::Duration),
    /// Publishing kept failing for the whole publish timeout.
    #[error("publishing to `{routing_key}` kept failing for {timeout:?}: {source}")]
    PublishFailed {
        /// Topic or queue the message was for.
        routing_key: String,
        /// How long it was tried.
        timeout: std::time::Duration,
        /// The last failure.
        source: Box<BusError>,
    },
    /// The broker cancelled the consumer, for example because its queue was deleted.
    #[error("the broker cancelled the consumer of queue `{0}`")]
    ConsumerCancelled(String),
    /// A TLS file named by a variable could not be read.
    #[error("{variable} `{path}` cannot be read: {source}")]
    TlsFile {
        /// The variable naming the file.
        variable: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}
