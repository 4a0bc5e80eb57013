//! The Google Cloud Pub/Sub backend (`gcloud-pubsub`), against the emulator
//! (`PUBSUB_EMULATOR_HOST`) or real GCP with application default credentials.
//!
//! Names: a topic per event type, `{prefix}-{event-type}`; a subscription per consumer group,
//! named after the group (`{prefix}-sub-{event-type}[-{handler}]` for the bus's own groups).
//! A group name already taken by a subscription of another topic gets `{group}.{topic}`.
//! Topics are created on first publish (publishing again after `NOT_FOUND`), subscriptions on
//! first subscribe; an existing subscription whose filter or ordering differs is an error,
//! since Pub/Sub cannot change either.
//!
//! Publishing: each publish waits for the server's message id. With `EVENT_BUS_ENABLE_BATCHING`
//! a topic's publishes go through one sender that puts everything queued while the previous
//! request was in flight into the next `Publish` request (no timer, so a lone publish is not
//! delayed); `publish_batch` is one request per 1,000 messages. With `EVENT_BUS_ENABLE_ORDERING`
//! the aggregate id is the ordering key.
//!
//! Consuming: each subscription pulls in the background (a long poll), never more messages
//! than its max in-flight has room for; deliveries unsettled are kept leased (their ack
//! deadline extended) until settled. (A streaming pull is not used: the client keeps its
//! request stream open after the response is dropped, so a closed member would go on
//! receiving, and losing until their deadline, the group's messages.)
//! `Nack::Requeue` is a `modifyAckDeadline` of 0, `Nack::RequeueAfter` one of the delay
//! (whole seconds, at most 600). With ordering, a key's next message is held until the one
//! before it is settled, and a nacked message is redelivered in place, after its delay, so the
//! key's order holds. The attempt number is Pub/Sub's delivery attempt (reported when the
//! subscription has a dead-letter policy) plus redeliveries in place; without a policy it is
//! counted by the subscription.
//!
//! Dead letters: the bus dead-letters with its reason headers after `max_delivery_attempts`.
//! The subscription also gets Pub/Sub's own dead-letter policy to the same topic with two more
//! attempts (at least 5, at most 100), a safety net for messages no handler ever settles; such
//! a message is read back from the dead-letter topic with `x-dead-letter-reason:
//! max-attempts-exceeded` and the origin Pub/Sub recorded, so both paths look alike.
//!
//! Tenants: a subscription with a tenant is created with the filter
//! `attributes.tenant_id = "{tenant}"`, and deliveries of another tenant are acknowledged
//! without being handed out, since the emulator stores filters but does not apply them.
//!
//! Limits: Pub/Sub keeps messages only for subscriptions that exist when they are published,
//! so a new group does not receive earlier events. The dead-letter topic's keeping
//! subscription (`dead_letter_subscription`) is therefore created with the topic, by every
//! subscription that dead-letters to it. The emulator keeps everything in memory.

mod admin;
mod attributes;
mod broker;
mod delivery;
mod lease;
mod sender;
mod shared;
mod subscription;

use std::sync::Arc;
use std::time::Duration;

use event_bus_core::{AccessKind, BusError, BusSettings};
use gcloud_gax::grpc::Status;

use crate::registry::{Backend, BackendError, Connected};

pub use admin::{ADMIN_LOG_TARGET, dead_letter_attempts, subscription_id, tenant_filter};
pub use broker::{PubSubBroker, PubSubOptions, VARIABLES};

/// The Pub/Sub backend, `EVENT_BUS_TYPE=pubsub`.
pub const BACKEND: Backend = Backend {
    name: "pubsub",
    variables: VARIABLES,
    connect: |settings| Box::pin(connect(settings)),
};

/// Connects the Pub/Sub backend that `settings` describe.
pub async fn connect(settings: &BusSettings) -> Result<Connected, BackendError> {
    let options = PubSubOptions::from_settings(settings)?;
    Ok(Connected::broker(Arc::new(
        PubSubBroker::connect(options).await?,
    )))
}

/// What went wrong on the Pub/Sub side.
#[derive(Debug, thiserror::Error)]
pub enum PubSubError {
    /// The server (emulator or GCP) could not be reached in time.
    #[error("no connection to Pub/Sub at {endpoint} within {timeout:?}: {cause}")]
    Unreachable {
        /// The emulator address or the GCP endpoint.
        endpoint: String,
        /// How long it was tried.
        timeout: Duration,
        /// Why, in words.
        cause: String,
    },
    /// Credentials or client configuration could not be set up.
    #[error("Pub/Sub client setup failed: {0}")]
    Setup(String),
    /// A request was answered with an error.
    #[error("Pub/Sub {operation} on `{resource}` failed: {status}")]
    Request {
        /// What was asked.
        operation: &'static str,
        /// Topic or subscription.
        resource: String,
        /// The server's answer.
        #[source]
        status: Box<Status>,
    },
    /// The subscription exists with another filter, which Pub/Sub cannot change.
    #[error(
        "subscription `{subscription}` exists with filter `{existing}`, not `{wanted}`; delete it to change the filter"
    )]
    FilterMismatch {
        /// The subscription.
        subscription: String,
        /// Its filter.
        existing: String,
        /// The filter asked for.
        wanted: String,
    },
    /// The subscription exists with message ordering set the other way.
    #[error(
        "subscription `{subscription}` exists with message ordering {existing}, not {wanted}; delete it to change ordering"
    )]
    OrderingMismatch {
        /// The subscription.
        subscription: String,
        /// Its setting.
        existing: bool,
        /// The setting asked for.
        wanted: bool,
    },
}

fn request_error(operation: &'static str, resource: &str, status: Status) -> BusError {
    let refused = match status.code() {
        gcloud_gax::grpc::Code::PermissionDenied => Some(AccessKind::Permission),
        gcloud_gax::grpc::Code::Unauthenticated => Some(AccessKind::Credentials),
        _ => None,
    };
    if let Some(kind) = refused {
        return BusError::access(
            "pubsub",
            kind,
            format!("{operation} on `{resource}`: {}", status.message()),
        );
    }
    BusError::backend(
        "pubsub",
        PubSubError::Request {
            operation,
            resource: resource.to_owned(),
            status: Box::new(status),
        },
    )
}
