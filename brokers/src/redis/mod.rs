//! The Redis backend: durable Redis Streams with consumer groups, or plain Pub/Sub channels.
//!
//! Streams (the default): each topic is a stream, each consumer group a stream consumer group
//! created at id `0` (so a new group also receives earlier entries). Entries are read with
//! `XREADGROUP` and acknowledged with `XACK`. A nack puts the entry's id into the group's
//! sorted set `{topic}:delayed:{group}` with its due time; a member takes due ids back with
//! `XCLAIM`, which counts the delivery. Entries left unacknowledged longer than the ack deadline
//! (a crashed member) are taken over with `XAUTOCLAIM`. A member that closes, or drops a
//! delivery unsettled, hands its entries back at once. The attempt number is the stream's own
//! delivery count. `REDIS_STREAM_MAX_LEN` trims streams with `MAXLEN ~`.
//!
//! A member keeps the entries it holds (handed out or fetched) from going idle with
//! `XCLAIM … JUSTID` every third of the ack deadline, so a slow handler's entry is not taken over.
//! An instance-scoped group (`SubscriptionConfig::ephemeral`) is destroyed when its owner
//! closes it, and, when the owner died, three ack deadlines after its last heartbeat by the next
//! member of the stream that subscribes or beats (see `ephemeral.rs`).
//!
//! Limits: per-key order is not kept (a redelivered entry is handled after later ones).
//! Durability is the server's: streams survive a restart only when Redis persists (AOF).
//!
//! Channels (`REDIS_TRANSPORT=channels`): `PUBLISH`/`SUBSCRIBE` on
//! `{REDIS_CHANNEL_PREFIX}{topic}`. Not durable: no consumer groups (every subscriber gets
//! every message), retries kept in the subscribing process only, and messages published while
//! nobody listens are gone. It does not run the conformance suite,
//! whose guarantees it does not give.

mod broker;
mod channel;
mod client;
mod dedup_store;
mod delivery;
mod entry;
mod ephemeral;
mod settings;
mod subscription;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use event_bus_core::{AccessKind, BusError, BusSettings};

use crate::registry::{Backend, BackendError, Connected};

pub use broker::{RedisBroker, RedisOptions};
pub use channel::RedisChannelBroker;
pub use client::{RedisTls, RedisTlsFileError};
pub use dedup_store::RedisDedupStore;
pub use settings::VARIABLES;

use settings::RedisMode;

/// The Redis backend, `EVENT_BUS_TYPE=redis`.
pub const BACKEND: Backend = Backend {
    name: "redis",
    variables: VARIABLES,
    connect: |settings| Box::pin(connect(settings)),
};

/// Connects the Redis backend that `settings` describe: channels when
/// `REDIS_TRANSPORT=channels`, streams otherwise, with idempotency keys kept in Redis under
/// `{topic prefix}-dedup:` so every process of a consumer group shares them.
pub async fn connect(settings: &BusSettings) -> Result<Connected, BackendError> {
    match RedisMode::from_settings(settings)? {
        RedisMode::Channels { url, prefix, tls } => Ok(Connected::broker(Arc::new(
            RedisChannelBroker::connect(&client::client(&url, &tls)?, &prefix).await?,
        ))),
        RedisMode::Streams(options) => {
            let dedup_prefix = format!("{}-dedup", settings.topic_prefix);
            let store = RedisDedupStore::connect_with(&options, &dedup_prefix).await?;
            Ok(Connected {
                broker: Arc::new(RedisBroker::connect(options).await?),
                dedup_store: Some(Arc::new(store)),
            })
        }
    }
}

/// The bus's error for a client error: refused credentials or permissions, and an untrusted
/// certificate, are [`BusError::Access`]; the rest [`BusError::Backend`].
fn redis_error(error: redis::RedisError) -> BusError {
    use redis::{ErrorKind, ServerErrorKind};
    let kind = match error.kind() {
        ErrorKind::AuthenticationFailed => Some(AccessKind::Credentials),
        ErrorKind::Server(ServerErrorKind::NoPerm) => Some(AccessKind::Permission),
        ErrorKind::Io if crate::access::names_a_certificate(&error) => {
            Some(AccessKind::Certificate)
        }
        _ => None,
    };
    match kind {
        Some(kind) => BusError::access("redis", kind, error.to_string()),
        None => BusError::backend("redis", error),
    }
}

/// Milliseconds since the Unix epoch, the score of the delayed-retry sets.
fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
