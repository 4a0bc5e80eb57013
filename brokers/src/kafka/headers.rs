//! A transport message as a Kafka record and back: key, headers, and the retry bookkeeping
//! headers the backend adds to copies on a retry topic. The message's header names are those
//! of the CloudEvents Kafka binding already (`content-type`, `ce_{name}`), so they are record
//! headers as they are.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use event_bus_core::Message;
use rdkafka::message::{Header, Headers, OwnedHeaders};

/// Attempts already made when a copy was put on the retry topic.
pub(super) const RETRY_ATTEMPTS: &str = "x-retry-attempts";
/// When (Unix milliseconds) a copy on the retry topic is due.
pub(super) const RETRY_DUE_AT: &str = "x-retry-due-at";
/// The topic a retried copy was first consumed from.
pub(super) const RETRY_ORIGINAL_TOPIC: &str = "x-retry-original-topic";

/// A record read back: the message and the retry bookkeeping it carried.
pub(super) struct Received {
    /// The message as published, without the backend's retry headers.
    pub(super) message: Message,
    /// Attempts made before this delivery.
    pub(super) previous_attempts: u32,
    /// When the delivery is due (Unix milliseconds), for copies on a retry topic.
    pub(super) due_at: Option<u64>,
}

/// The message's headers, plus `extra`, as Kafka record headers.
pub(super) fn record_headers(message: &Message, extra: &[(&str, String)]) -> OwnedHeaders {
    let mut headers = OwnedHeaders::new_with_capacity(message.headers.len() + extra.len());
    for (key, value) in &message.headers {
        if extra.iter().any(|(name, _)| name == key) {
            continue;
        }
        headers = headers.insert(Header {
            key,
            value: Some(value.as_bytes()),
        });
    }
    for (key, value) in extra {
        headers = headers.insert(Header {
            key,
            value: Some(value.as_bytes()),
        });
    }
    headers
}

/// Reads a consumed record.
pub(super) fn received(record: &impl rdkafka::Message) -> Received {
    let mut message = Message::new(Bytes::copy_from_slice(record.payload().unwrap_or_default()));
    message.key = record
        .key()
        .map(|key| String::from_utf8_lossy(key).into_owned());
    let mut previous_attempts = 0;
    let mut due_at = None;
    if let Some(headers) = record.headers() {
        for header in headers.iter() {
            let value = String::from_utf8_lossy(header.value.unwrap_or_default()).into_owned();
            match header.key {
                RETRY_ATTEMPTS => previous_attempts = value.parse().unwrap_or(0),
                RETRY_DUE_AT => due_at = value.parse().ok(),
                RETRY_ORIGINAL_TOPIC => {}
                key => {
                    message.headers.insert(key.to_owned(), value);
                }
            }
        }
    }
    Received {
        message,
        previous_attempts,
        due_at,
    }
}

/// Milliseconds since the Unix epoch.
pub(super) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
