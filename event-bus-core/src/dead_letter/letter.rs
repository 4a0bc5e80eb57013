//! A dead-lettered message read back: the original message and what its headers say about
//! the failure.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::headers;
use crate::envelope::{EventEnvelope, wire_headers};
use crate::message::Message;

/// Header counting how often a dead letter was sent back to its original topic.
pub const REDRIVES_HEADER: &str = "x-dead-letter-redrives";

/// Header naming the one consumer group a redriven message is for (the group that
/// dead-lettered it); the workers of every other group on the topic acknowledge it unhandled.
pub const REDRIVE_SUBSCRIPTION_HEADER: &str = "x-redrive-subscription";

/// A message taken from a dead-letter topic.
#[derive(Clone, Debug, PartialEq)]
pub struct DeadLetter {
    /// Id of this dead letter (not of the event: one event can be dead-lettered by several groups).
    pub id: Uuid,
    /// When it was taken from the dead-letter topic.
    pub received_at: DateTime<Utc>,
    /// Id of the carried event, when the message says.
    pub event_id: Option<String>,
    /// Type of the carried event, when the message says.
    pub event_type: Option<String>,
    /// Why it was dead-lettered (`x-dead-letter-reason`), `unknown` when missing.
    pub reason: String,
    /// The last error.
    pub error: String,
    /// Delivery attempts made before it was dead-lettered.
    pub attempts: u32,
    /// Times it was already sent back to its original topic.
    pub redrives: u32,
    /// Topic it failed on.
    pub original_topic: String,
    /// Consumer group that gave up on it.
    pub subscription: String,
    /// First failure.
    pub first_failure_at: Option<DateTime<Utc>>,
    /// Last failure.
    pub last_failure_at: Option<DateTime<Utc>>,
    /// The message as it arrived on the dead-letter topic.
    pub message: Message,
}

fn time(message: &Message, name: &str) -> Option<DateTime<Utc>> {
    message
        .headers
        .get(name)
        .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
        .map(|t| t.with_timezone(&Utc))
}

impl DeadLetter {
    /// Reads the failure headers of a message from a dead-letter topic.
    pub fn from_message(message: Message) -> Self {
        let header = |name: &str| message.headers.get(name).cloned();
        let envelope = EventEnvelope::from_message(&message).ok();
        let event_id = header(wire_headers::EVENT_ID).or(envelope.as_ref().map(|e| e.id.clone()));
        let event_type = header(wire_headers::EVENT_TYPE).or(envelope.map(|e| e.event_type));
        Self {
            id: Uuid::now_v7(),
            received_at: Utc::now(),
            event_id,
            event_type,
            reason: header(headers::REASON).unwrap_or_else(|| "unknown".to_owned()),
            error: header(headers::ERROR).unwrap_or_default(),
            attempts: header(headers::ATTEMPTS)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            redrives: header(REDRIVES_HEADER)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            original_topic: header(headers::ORIGINAL_TOPIC).unwrap_or_default(),
            subscription: header(headers::SUBSCRIPTION).unwrap_or_default(),
            first_failure_at: time(&message, headers::FIRST_FAILURE_AT),
            last_failure_at: time(&message, headers::LAST_FAILURE_AT),
            message,
        }
    }

    /// The original message to publish again: failure headers removed, redrive count raised,
    /// addressed to the consumer group that gave up on it (when the dead letter names one), so
    /// groups that handled it already do not handle it again.
    pub fn redrive_message(&self) -> Message {
        let mut message = self.message.clone();
        message
            .headers
            .retain(|name, _| !name.starts_with("x-dead-letter-"));
        message
            .headers
            .insert(REDRIVES_HEADER.to_owned(), (self.redrives + 1).to_string());
        if self.subscription.is_empty() {
            message.headers.remove(REDRIVE_SUBSCRIPTION_HEADER);
        } else {
            message.headers.insert(
                REDRIVE_SUBSCRIPTION_HEADER.to_owned(),
                self.subscription.clone(),
            );
        }
        message
    }

    /// When the failure started: the first failure, else when it was received.
    pub fn failed_since(&self) -> DateTime<Utc> {
        self.first_failure_at.unwrap_or(self.received_at)
    }
}
