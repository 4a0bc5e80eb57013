//! The NATS JetStream backend (`async-nats`).
//!
//! Streams: every topic is a JetStream stream of its own, whose one subject is the stream's
//! name: the topic with each character a NATS name cannot hold (anything but ASCII letters,
//! digits and `-`) written `_XX` per UTF-8 byte, so `events-user-registered` stays as it is.
//! A stream is created on the first publish or subscribe with limits retention, the storage,
//! replicas and age limit of [`NatsOptions`], and every publish waits for the stream's
//! acknowledgement. A message's headers travel as NATS headers; its key and the rare header
//! a NATS header cannot carry travel in headers of the backend's own (see `headers.rs`).
//!
//! Consuming: each consumer group is one durable pull consumer on its topic's stream, named
//! like a stream, starting at the stream's first message (so a new group also receives
//! earlier events) and shared by the group's members. A member pulls batches of its max
//! in-flight into an inbox of its own, asking for more once half has arrived. All settling is
//! in `delivery.rs`: acknowledgements wait for the server's confirmation; `ack` is `+ACK`,
//! `Nack::Requeue` is `-NAK`, `Nack::RequeueAfter` is `-NAK` with the delay, `Nack::Discard`
//! (the bus moved the message elsewhere) is `+ACK`. The attempt number is JetStream's delivery count. A delivery dropped unsettled
//! is handed back with `-NAK` at once; a closing member waits for its open pull to end (at
//! most two seconds), then hands back all it still holds. A crashed member's deliveries come
//! back after the consumer's ack wait, which is `EVENT_BUS_ACK_DEADLINE_SECONDS`.
//!
//! Dead letters: the bus decides them from the attempt number and publishes them to
//! `{prefix}-dead-letter` like any other topic. As a safety net the consumer's `max_deliver` is
//! four times the subscription's attempts (unlimited without a dead-letter topic): a message
//! the bus never settles, such as one whose handler kills the process every time, stops being
//! delivered there; it stays in the stream and the server announces it with a
//! `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES` advisory.
//!
//! Ordering: with ordering on, the group's consumer has `max_ack_pending` 1, so the server
//! hands out the group's next message only once the previous one is settled: per-key (indeed
//! total) order holds across members, redeliveries and restarts, at one message per round trip.
//!
//! Connection loss: the client reconnects by itself and sends what it held; a subscription
//! whose pull expired unanswered makes sure its group's consumer exists (creating it again
//! if it was deleted) and pulls again; a publish not acknowledged in time fails with a clear
//! error. A group's consumer takes the settings of the member that subscribed last.
//!
//! Limits: a handler running longer than the ack deadline may see its message delivered to
//! another member too.

mod broker;
mod delivery;
mod headers;
mod names;
mod options;
mod publisher;
mod streams;
mod subscription;
mod violations;

use std::sync::Arc;
use std::time::Duration;

use event_bus_core::{AccessKind, BusError, BusSettings, TopologyItem};

use crate::registry::{Backend, BackendError, Connected};

pub use broker::NatsBroker;
pub use options::{NatsConfigError, NatsOptions, StreamStorage, VARIABLES};

/// The name the backend reports, and the one its errors carry.
const NAME: &str = "nats";

/// The NATS JetStream backend, `EVENT_BUS_TYPE=nats`.
pub const BACKEND: Backend = Backend {
    name: NAME,
    variables: VARIABLES,
    connect: |settings| Box::pin(connect(settings)),
};

/// Connects the NATS backend that `settings` describe.
pub async fn connect(settings: &BusSettings) -> Result<Connected, BackendError> {
    let options = NatsOptions::from_settings(settings).map_err(BackendError::settings)?;
    Ok(Connected::broker(Arc::new(
        NatsBroker::connect(options).await?,
    )))
}

/// What went wrong on the NATS side.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    /// No server at the URL completed the connection in time.
    #[error("no NATS server at {url} answered within {timeout:?}")]
    Unreachable {
        /// `NATS_URL`.
        url: String,
        /// How long it waited.
        timeout: Duration,
    },
    /// The connection was refused or failed.
    #[error("connecting to the NATS server at {url} failed: {source}")]
    Connect {
        /// `NATS_URL`.
        url: String,
        /// The client's error.
        source: async_nats::ConnectError,
    },
    /// The server answers, but JetStream does not (it runs without `-js`).
    #[error("the NATS server at {url} has no JetStream (start it with `-js`): {source}")]
    NoJetStream {
        /// `NATS_URL`.
        url: String,
        /// The client's error.
        source: async_nats::RequestError,
    },
    /// JetStream answered with an error (the account has no JetStream, for example).
    #[error("JetStream at {url} refused the connection's account: {description}")]
    JetStreamRefused {
        /// `NATS_URL`.
        url: String,
        /// The server's description.
        description: String,
    },
    /// A topic's stream could not be created or looked up.
    #[error("creating the JetStream stream `{stream}` failed: {source}")]
    Stream {
        /// The stream.
        stream: String,
        /// The client's error.
        source: async_nats::jetstream::context::CreateStreamError,
    },
    /// `EVENT_BUS_TOPOLOGY=existing` and a topic's stream does not exist.
    #[error("the JetStream stream `{stream}` does not exist")]
    MissingStream {
        /// The stream.
        stream: String,
    },
    /// A topic's stream could not be looked up.
    #[error("looking up the JetStream stream `{stream}` failed: {source}")]
    LookUpStream {
        /// The stream.
        stream: String,
        /// The client's error.
        source: async_nats::jetstream::context::GetStreamError,
    },
    /// `EVENT_BUS_TOPOLOGY=existing` and a consumer group's durable consumer does not exist.
    #[error("the consumer `{consumer}` of JetStream stream `{stream}` does not exist")]
    MissingConsumer {
        /// The stream.
        stream: String,
        /// The consumer.
        consumer: String,
    },
    /// The server refused the user a JetStream request (its permissions deny the subject).
    #[error("the server refused to let this user publish to `{subject}`")]
    Refused {
        /// The refused subject.
        subject: String,
    },
    /// A consumer group's durable consumer could not be created.
    #[error("creating the consumer `{consumer}` on stream `{stream}` failed: {source}")]
    Consumer {
        /// The stream.
        stream: String,
        /// The consumer.
        consumer: String,
        /// The client's error.
        source: async_nats::jetstream::stream::ConsumerError,
    },
    /// An instance-scoped group's consumer could not be removed on close.
    #[error("removing the consumer `{consumer}` of stream `{stream}` failed: {source}")]
    DeleteConsumer {
        /// The stream.
        stream: String,
        /// The consumer.
        consumer: String,
        /// The client's error.
        source: async_nats::Error,
    },
    /// A message was not acknowledged by its stream.
    #[error("publishing to `{topic}` failed: {source}")]
    Publish {
        /// The topic.
        topic: String,
        /// The client's error.
        source: async_nats::jetstream::context::PublishError,
    },
    /// The member's inbox could not be subscribed.
    #[error("subscribing a member's inbox failed: {0}")]
    Subscribe(#[source] async_nats::SubscribeError),
    /// A pull request could not be sent.
    #[error("pulling from the consumer `{consumer}` failed: {source}")]
    Pull {
        /// The consumer.
        consumer: String,
        /// The client's error.
        source: async_nats::jetstream::consumer::pull::BatchRequestError,
    },
    /// The server ended a pull request with an error status.
    #[error("the server ended a pull from `{consumer}`: {status} {description}")]
    PullStatus {
        /// The consumer.
        consumer: String,
        /// The status code.
        status: async_nats::StatusCode,
        /// The server's description.
        description: String,
    },
    /// A message came without a JetStream acknowledgement subject.
    #[error("a message on `{subject}` has no JetStream acknowledgement subject")]
    NotJetStream {
        /// Where it came from.
        subject: String,
    },
    /// The server did not confirm an acknowledgement.
    #[error("settling a delivery ({kind}) failed: {source}")]
    Settle {
        /// `+ACK` or `-NAK`.
        kind: &'static str,
        /// The client's error.
        source: async_nats::RequestError,
    },
    /// A batch could not be published because its topic's stream could not be created.
    #[error(transparent)]
    Batch(std::sync::Arc<NatsError>),
    /// The publisher was flushed on close, and the flush failed.
    #[error("flushing on close failed: {0}")]
    Flush(#[from] async_nats::client::FlushError),
}

impl From<NatsError> for BusError {
    fn from(error: NatsError) -> Self {
        let cause = match &error {
            NatsError::Batch(inner) => &**inner,
            other => other,
        };
        match cause {
            NatsError::MissingStream { stream } => {
                BusError::missing(NAME, TopologyItem::new("stream", stream))
            }
            NatsError::MissingConsumer { stream, consumer } => BusError::missing(
                NAME,
                TopologyItem::new("durable consumer", consumer)
                    .of(TopologyItem::new("stream", stream)),
            ),
            NatsError::Refused { .. } => {
                BusError::access(NAME, AccessKind::Permission, error.to_string())
            }
            NatsError::Connect { source, .. } => match source.kind() {
                async_nats::ConnectErrorKind::AuthorizationViolation
                | async_nats::ConnectErrorKind::Authentication => {
                    BusError::access(NAME, AccessKind::Credentials, error.to_string())
                }
                async_nats::ConnectErrorKind::Tls => {
                    BusError::access(NAME, AccessKind::Certificate, error.to_string())
                }
                async_nats::ConnectErrorKind::Io if crate::access::names_a_certificate(source) => {
                    BusError::access(NAME, AccessKind::Certificate, error.to_string())
                }
                _ => BusError::backend(NAME, error),
            },
            _ => BusError::backend(NAME, error),
        }
    }
}
