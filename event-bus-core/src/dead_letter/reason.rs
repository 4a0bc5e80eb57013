//! Dead-letter semantics: the headers a dead-lettered message carries and why it got there.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::message::Message;

/// Header names set on every dead-lettered message.
pub mod headers {
    /// Why the event was dead-lettered, a [`DeadLetterReason`](crate::dead_letter::DeadLetterReason) name.
    pub const REASON: &str = "x-dead-letter-reason";
    /// The last error, in words.
    pub const ERROR: &str = "x-dead-letter-error";
    /// Delivery attempts made.
    pub const ATTEMPTS: &str = "x-dead-letter-attempts";
    /// Topic the event was consumed from.
    pub const ORIGINAL_TOPIC: &str = "x-dead-letter-original-topic";
    /// Consumer group that gave up on it.
    pub const SUBSCRIPTION: &str = "x-dead-letter-subscription";
    /// First failure of the event in its consumer group (RFC 3339).
    pub const FIRST_FAILURE_AT: &str = "x-dead-letter-first-failure-at";
    /// Last failure (RFC 3339).
    pub const LAST_FAILURE_AT: &str = "x-dead-letter-last-failure-at";
    /// Set on a failed event being retried: its first failure (RFC 3339). Backends that
    /// deliver a retry as a new copy (Kafka, RabbitMQ) carry it to whichever member gets the
    /// retry; it is not part of a dead letter.
    pub const FAILING_SINCE: &str = "x-failing-since";
}

/// Why an event was moved to the dead-letter topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeadLetterReason {
    /// The payload is not a valid event envelope.
    MalformedPayload,
    /// The message is larger than the configured limit.
    Oversize,
    /// The handler reported a failure that no retry can fix.
    PermanentFailure,
    /// Every allowed delivery attempt failed.
    MaxAttemptsExceeded,
    /// The envelope names another tenant than the subscription (and the message's
    /// `tenant_id` attribute) does; the handler was not called.
    TenantMismatch,
}

impl DeadLetterReason {
    /// Whether the handler ran and failed (rather than the event being unfit to handle).
    pub fn is_handler_failure(self) -> bool {
        matches!(self, Self::PermanentFailure | Self::MaxAttemptsExceeded)
    }

    /// The name written into the reason header.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MalformedPayload => "malformed-payload",
            Self::Oversize => "oversize",
            Self::PermanentFailure => "permanent-failure",
            Self::MaxAttemptsExceeded => "max-attempts-exceeded",
            Self::TenantMismatch => "tenant-mismatch",
        }
    }
}

impl std::fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is known about an event's failures when it is dead-lettered.
#[derive(Clone, Debug)]
pub struct FailureReport<'a> {
    /// Why it is dead-lettered.
    pub reason: DeadLetterReason,
    /// The last error.
    pub error: String,
    /// Delivery attempts made.
    pub attempts: u32,
    /// Topic it was consumed from.
    pub original_topic: &'a str,
    /// Consumer group that gave up.
    pub subscription: &'a str,
    /// First failure seen.
    pub first_failure_at: DateTime<Utc>,
    /// Last failure.
    pub last_failure_at: DateTime<Utc>,
}

impl FailureReport<'_> {
    /// The original message, untouched, with the failure headers added.
    pub fn dead_letter_message(&self, original: &Message) -> Message {
        let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
        let mut message = original.clone();
        message.headers.remove(headers::FAILING_SINCE);
        message
            .with_header(headers::REASON, self.reason.as_str())
            .with_header(headers::ERROR, self.error.clone())
            .with_header(headers::ATTEMPTS, self.attempts.to_string())
            .with_header(headers::ORIGINAL_TOPIC, self.original_topic)
            .with_header(headers::SUBSCRIPTION, self.subscription)
            .with_header(headers::FIRST_FAILURE_AT, time(self.first_failure_at))
            .with_header(headers::LAST_FAILURE_AT, time(self.last_failure_at))
    }
}
