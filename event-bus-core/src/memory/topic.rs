//! A topic of the in-memory broker: an append-only log and its consumer groups.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

use super::group::GroupState;
use crate::message::Message;

/// An in-memory topic; every change wakes the subscriptions waiting on it.
#[derive(Default)]
pub(super) struct Topic {
    state: Mutex<TopicState>,
    changed: Notify,
}

/// The log and the groups reading it.
#[derive(Default)]
pub(super) struct TopicState {
    pub(super) log: Vec<Message>,
    pub(super) groups: HashMap<String, GroupState>,
}

impl Topic {
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
