//! Selecting dead letters by reason, topic and event type.

use super::DeadLetter;

/// Which dead letters an operation applies to; unset fields match every dead letter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeadLetterFilter {
    /// Dead letters with this reason, such as `max-attempts-exceeded`.
    pub reason: Option<String>,
    /// Dead letters from this original topic.
    pub original_topic: Option<String>,
    /// Dead letters carrying this event type.
    pub event_type: Option<String>,
}

impl DeadLetterFilter {
    /// Whether `letter` passes the filter.
    pub fn matches(&self, letter: &DeadLetter) -> bool {
        self.reason.as_ref().is_none_or(|r| *r == letter.reason)
            && self
                .original_topic
                .as_ref()
                .is_none_or(|t| *t == letter.original_topic)
            && self
                .event_type
                .as_ref()
                .is_none_or(|t| letter.event_type.as_ref() == Some(t))
    }
}
