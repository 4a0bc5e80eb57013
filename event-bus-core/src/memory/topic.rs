//! A topic of the in-memory broker: a log and its consumer groups; the log keeps what some
//! group has not settled, and the latest messages for groups that join later.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

use super::group::GroupState;
use super::log::Log;
use crate::message::Message;

/// An in-memory topic. A publish wakes one waiting member of each group; a settle that may
/// free a message wakes every waiting member.
pub(super) struct Topic {
    state: Mutex<TopicState>,
    changed: Notify,
    published: Notify,
}

/// The log and the groups reading it.
pub(super) struct TopicState {
    pub(super) log: Log,
    pub(super) groups: HashMap<String, GroupState>,
    /// Settled messages kept anyway, the latest ones, for groups that join later.
    retained: usize,
}

impl TopicState {
    /// The group's state, a new group starting at the oldest message held.
    pub(super) fn group(&mut self, name: &str) -> &mut GroupState {
        group_of(&mut self.groups, name, self.log.start())
    }

    /// Appends `message`, trims, and wakes one waiting member of each group.
    pub(super) fn append(&mut self, message: Message) {
        self.log.push(message);
        self.trim();
        for group in self.groups.values() {
            group.arrivals.notify_one();
        }
    }

    /// Drops the messages that every group has settled and that are older than the latest
    /// `retained`.
    pub(super) fn trim(&mut self) {
        if self.log.end() - self.log.start() <= self.retained {
            return;
        }
        let unsettled = self.groups.values().map(GroupState::low_water).min();
        let old = self.log.end().saturating_sub(self.retained);
        self.log
            .trim_below(unsettled.map_or(old, |low| low.min(old)));
    }
}

/// The state of group `name` in `groups`, a new group starting at `start`.
pub(super) fn group_of<'a>(
    groups: &'a mut HashMap<String, GroupState>,
    name: &str,
    start: usize,
) -> &'a mut GroupState {
    if !groups.contains_key(name) {
        groups.insert(name.to_owned(), GroupState::starting_at(start));
    }
    groups.get_mut(name).expect("inserted above")
}

impl Topic {
    /// An empty topic that keeps the latest `retained` settled messages.
    pub(super) fn new(retained: usize) -> Self {
        Self {
            state: Mutex::new(TopicState {
                log: Log::default(),
                groups: HashMap::new(),
                retained,
            }),
            changed: Notify::new(),
            published: Notify::new(),
        }
    }

    /// Locks the topic for reading or changing.
    pub(super) fn lock(&self) -> MutexGuard<'_, TopicState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends `message` to the log and wakes who waits for it.
    pub(super) fn publish(&self, message: Message) {
        self.lock().append(message);
        self.published.notify_waiters();
    }

    /// A future that completes at the next publish; it counts from the moment it is created.
    pub(super) fn next_publish(&self) -> tokio::sync::futures::Notified<'_> {
        self.published.notified()
    }

    /// Changes the topic and wakes every waiting subscription.
    pub(super) fn update<T>(&self, change: impl FnOnce(&mut TopicState) -> T) -> T {
        let result = change(&mut self.lock());
        self.changed.notify_waiters();
        result
    }

    /// A future that completes at the next settle that may free a message; it counts from the
    /// moment it is created.
    pub(super) fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }
}
