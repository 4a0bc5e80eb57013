//! Counts of dead letters by reason, topic and event type, and the oldest failure.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{Action, DeadLetter};

/// Dead letters counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeadLetterStats {
    /// Dead letters counted.
    pub total: u64,
    /// Sent back to their original topic.
    pub retried: u64,
    /// Dropped.
    pub discarded: u64,
    /// Parked for a person.
    pub parked: u64,
    /// Count per reason.
    pub by_reason: BTreeMap<String, u64>,
    /// Count per original topic.
    pub by_topic: BTreeMap<String, u64>,
    /// Count per event type (`unknown` when the message does not say).
    pub by_event_type: BTreeMap<String, u64>,
    /// The earliest failure among them.
    pub oldest_failure_at: Option<DateTime<Utc>>,
}

impl DeadLetterStats {
    /// Statistics of these dead letters.
    pub fn of<'a>(letters: impl IntoIterator<Item = &'a DeadLetter>) -> Self {
        let mut stats = Self::default();
        for letter in letters {
            stats.count(letter);
        }
        stats
    }

    /// Counts one dead letter.
    pub fn count(&mut self, letter: &DeadLetter) {
        self.total += 1;
        *self.by_reason.entry(letter.reason.clone()).or_default() += 1;
        *self
            .by_topic
            .entry(letter.original_topic.clone())
            .or_default() += 1;
        let event_type = letter.event_type.as_deref().unwrap_or("unknown");
        *self.by_event_type.entry(event_type.to_owned()).or_default() += 1;
        let since = letter.failed_since();
        self.oldest_failure_at = Some(self.oldest_failure_at.map_or(since, |o| o.min(since)));
    }

    /// Counts one dead letter and what was done with it.
    pub fn count_action(&mut self, letter: &DeadLetter, action: Action) {
        self.count(letter);
        match action {
            Action::Retry => self.retried += 1,
            Action::Discard => self.discarded += 1,
            Action::Park => self.parked += 1,
        }
    }

    /// Age of the oldest failure at `now`.
    pub fn oldest_age(&self, now: DateTime<Utc>) -> Option<chrono::Duration> {
        self.oldest_failure_at.map(|oldest| now - oldest)
    }
}
