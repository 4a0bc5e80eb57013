//! A topic of the in-memory broker: a log and its consumer groups; the log keeps what some
//! group has not settled, and the latest messages for groups that join later.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

use super::group::GroupState;
use super::log::Log;

/// An in-memory topic; every change wakes the subscriptions waiting on it.
pub(super) struct Topic {
    state: Mutex<TopicState>,
    changed: Notify,
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
        let start = self.log.start();
        self.groups
            .entry(name.to_owned())
            .or_insert_with(|| GroupState::starting_at(start))
    }

    /// Drops the messages that every group has settled and that are older than the latest
    /// `retained`.
    pub(super) fn trim(&mut self) {
        let unsettled = self.groups.values().map(GroupState::low_water).min();
        let old = self.log.end().saturating_sub(self.retained);
        self.log
            .trim_below(unsettled.map_or(old, |low| low.min(old)));
    }
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
        }
    }

    /// Locks the topic for reading or changing.
    pub(super) fn lock(&self) -> MutexGuard<'_, TopicState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the topic and wakes every waiting subscription.
    pub(super) fn update<T>(&self, change: impl FnOnce(&mut TopicState) -> T) -> T {
        let result = change(&mut self.lock());
        self.changed.notify_waiters();
        result
    }

    /// A future that completes at the next change; it counts from the moment it is created.
    pub(super) fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }
}
