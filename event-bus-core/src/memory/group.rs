//! One consumer group's view of a topic log: what is delivered, in flight, or waiting.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::log::Log;
use crate::transport::Nack;

/// Delivery state of one consumer group over a topic's log.
#[derive(Debug, Default)]
pub(super) struct GroupState {
    /// First log offset never handed to this group.
    cursor: usize,
    /// Offsets below the cursor still to be delivered: redeliveries, and messages held back
    /// behind an unsettled one with the same key. `Some(t)`: not before `t`.
    waiting: BTreeMap<usize, Option<Instant>>,
    in_flight: HashSet<usize>,
    attempts: HashMap<usize, u32>,
    /// Wakes one waiting member when a message arrives (a permit is kept if none waits).
    pub(super) arrivals: Arc<Notify>,
}

/// What the group should do next.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Dispatch {
    /// Hand out the message at this offset, for the given attempt.
    Deliver { offset: usize, attempt: u32 },
    /// Nothing is ready; look again when something changes or at the given time.
    Wait(Option<Instant>),
}

impl GroupState {
    /// A group that starts reading at `offset`.
    pub(super) fn starting_at(offset: usize) -> Self {
        Self {
            cursor: offset,
            ..Self::default()
        }
    }

    /// The lowest offset this group has not settled: what the log must still hold for it.
    pub(super) fn low_water(&self) -> usize {
        let waiting = self.waiting.keys().next().copied();
        let in_flight = self.in_flight.iter().min().copied();
        [Some(self.cursor), waiting, in_flight]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.cursor)
    }

    /// Picks the next message to deliver: due redeliveries first, oldest first, then new
    /// messages. With `ordering`, a message waits while an earlier one with its key is
    /// in flight or scheduled for redelivery.
    pub(super) fn dispatch(&mut self, log: &Log, ordering: bool, now: Instant) -> Dispatch {
        let key_of = |offset: usize| {
            if ordering {
                log.get(offset).and_then(|message| message.key.as_deref())
            } else {
                None
            }
        };
        let mut blocked: HashSet<&str> = self.in_flight.iter().filter_map(|&o| key_of(o)).collect();
        let mut wake: Option<Instant> = None;
        let mut chosen = None;
        for (&offset, &not_before) in &self.waiting {
            let key = key_of(offset);
            if key.is_some_and(|k| blocked.contains(k)) {
                continue;
            }
            match not_before {
                Some(due) if due > now => {
                    wake = Some(wake.map_or(due, |w| w.min(due)));
                    blocked.extend(key);
                }
                _ => {
                    chosen = Some(offset);
                    break;
                }
            }
        }
        if let Some(offset) = chosen {
            self.waiting.remove(&offset);
        } else {
            self.cursor = self.cursor.max(log.start());
            while self.cursor < log.end() {
                let offset = self.cursor;
                self.cursor += 1;
                if key_of(offset).is_some_and(|k| blocked.contains(k)) {
                    self.waiting.insert(offset, None);
                } else {
                    chosen = Some(offset);
                    break;
                }
            }
        }
        match chosen {
            Some(offset) => {
                self.in_flight.insert(offset);
                let attempt = self.attempts.entry(offset).or_default();
                *attempt += 1;
                Dispatch::Deliver {
                    offset,
                    attempt: *attempt,
                }
            }
            None => Dispatch::Wait(wake),
        }
    }

    /// The message at `offset` is done for this group.
    pub(super) fn ack(&mut self, offset: usize) {
        if self.in_flight.remove(&offset) {
            self.attempts.remove(&offset);
        }
    }

    /// The message at `offset` was rejected.
    pub(super) fn nack(&mut self, offset: usize, nack: Nack, now: Instant) {
        if !self.in_flight.remove(&offset) {
            return;
        }
        match nack {
            Nack::Requeue => {
                self.waiting.insert(offset, None);
            }
            Nack::RequeueAfter(delay) => {
                self.waiting
                    .insert(offset, (!delay.is_zero()).then(|| now + delay));
            }
            Nack::Discard => {
                self.attempts.remove(&offset);
            }
        }
    }

    /// Messages this group has not finished: undelivered, waiting or in flight.
    pub(super) fn backlog(&self, log: &Log) -> usize {
        log.end().saturating_sub(self.cursor) + self.waiting.len() + self.in_flight.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::message::Message;

    fn log(keys: &[&str]) -> Log {
        let mut log = Log::default();
        for k in keys {
            log.push(Message::new(k.to_string()).with_key(*k));
        }
        log
    }

    fn deliver(
        group: &mut GroupState,
        log: &Log,
        ordering: bool,
        now: Instant,
    ) -> Option<(usize, u32)> {
        match group.dispatch(log, ordering, now) {
            Dispatch::Deliver { offset, attempt } => Some((offset, attempt)),
            Dispatch::Wait(_) => None,
        }
    }

    #[test]
    fn messages_go_out_in_log_order_once() {
        let log = log(&["a", "b", "c"]);
        let mut group = GroupState::default();
        let now = Instant::now();
        let delivered: Vec<_> =
            std::iter::from_fn(|| deliver(&mut group, &log, false, now)).collect();
        assert_eq!(delivered, vec![(0, 1), (1, 1), (2, 1)]);
        assert_eq!(group.backlog(&log), 3);
        (0..3).for_each(|o| group.ack(o));
        assert_eq!(group.backlog(&log), 0);
    }

    #[test]
    fn a_nacked_message_comes_back_with_the_next_attempt_number() {
        let log = log(&["a", "b"]);
        let mut group = GroupState::default();
        let now = Instant::now();
        assert_eq!(deliver(&mut group, &log, false, now), Some((0, 1)));
        group.nack(0, Nack::Requeue, now);
        assert_eq!(deliver(&mut group, &log, false, now), Some((0, 2)));
        assert_eq!(deliver(&mut group, &log, false, now), Some((1, 1)));
    }

    #[test]
    fn a_delayed_message_waits_until_due() {
        let log = log(&["a"]);
        let mut group = GroupState::default();
        let now = Instant::now();
        deliver(&mut group, &log, false, now);
        group.nack(0, Nack::RequeueAfter(Duration::from_secs(5)), now);
        assert_eq!(
            group.dispatch(&log, false, now),
            Dispatch::Wait(Some(now + Duration::from_secs(5)))
        );
        assert_eq!(
            deliver(&mut group, &log, false, now + Duration::from_secs(5)),
            Some((0, 2))
        );
    }

    #[test]
    fn with_ordering_a_key_waits_for_its_predecessor_but_other_keys_do_not() {
        let log = log(&["a", "a", "b"]);
        let mut group = GroupState::default();
        let now = Instant::now();
        assert_eq!(deliver(&mut group, &log, true, now), Some((0, 1)));
        assert_eq!(deliver(&mut group, &log, true, now), Some((2, 1)));
        assert_eq!(deliver(&mut group, &log, true, now), None);
        group.nack(0, Nack::RequeueAfter(Duration::from_secs(1)), now);
        assert_eq!(
            deliver(&mut group, &log, true, now),
            None,
            "offset 1 must wait for offset 0's retry"
        );
        let later = now + Duration::from_secs(1);
        assert_eq!(deliver(&mut group, &log, true, later), Some((0, 2)));
        group.ack(0);
        assert_eq!(deliver(&mut group, &log, true, later), Some((1, 1)));
    }

    #[test]
    fn without_ordering_same_key_messages_go_out_together() {
        let log = log(&["a", "a"]);
        let mut group = GroupState::default();
        let now = Instant::now();
        assert_eq!(deliver(&mut group, &log, false, now), Some((0, 1)));
        assert_eq!(deliver(&mut group, &log, false, now), Some((1, 1)));
    }

    #[test]
    fn the_low_water_mark_is_the_oldest_unsettled_offset() {
        let log = log(&["a", "b", "c"]);
        let mut group = GroupState::default();
        let now = Instant::now();
        assert_eq!(group.low_water(), 0);
        deliver(&mut group, &log, false, now);
        deliver(&mut group, &log, false, now);
        group.ack(1);
        assert_eq!(group.low_water(), 0, "offset 0 is in flight");
        group.nack(0, Nack::RequeueAfter(Duration::from_secs(1)), now);
        assert_eq!(group.low_water(), 0, "offset 0 waits for its retry");
        deliver(&mut group, &log, false, now + Duration::from_secs(1));
        group.ack(0);
        assert_eq!(group.low_water(), 2);
    }

    #[test]
    fn settling_twice_or_a_foreign_offset_changes_nothing() {
        let log = log(&["a"]);
        let mut group = GroupState::default();
        let now = Instant::now();
        deliver(&mut group, &log, false, now);
        group.ack(0);
        group.nack(0, Nack::Requeue, now);
        assert_eq!(deliver(&mut group, &log, false, now), None);
    }
}
