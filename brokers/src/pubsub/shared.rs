//! What a subscription shares with the deliveries it hands out: the messages ready to go,
//! the per-key gate of ordered subscriptions, leases, and the closed state.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use event_bus_core::Message;
use event_bus_core::kit::{ClosedFlag, KeyGate, Leases};
use gcloud_pubsub::subscriber::ReceivedMessage;
use gcloud_pubsub::subscription::Subscription as PubSubSubscriptionRef;
use tokio::sync::Notify;

/// A received message waiting to be handed out.
pub(super) struct Ready {
    pub(super) received: ReceivedMessage,
    pub(super) message: Message,
    /// Times it was redelivered in place (ordered subscriptions) since Pub/Sub delivered it.
    pub(super) redeliveries: u32,
}

impl Ready {
    pub(super) fn key(&self) -> Option<&str> {
        Some(self.received.message.ordering_key.as_str()).filter(|k| !k.is_empty())
    }
}

#[derive(Default)]
pub(super) struct State {
    pub(super) ready: VecDeque<Ready>,
    /// With ordering: one message per ordering key out at a time, the others waiting.
    pub(super) keys: KeyGate<Ready>,
    /// Deliveries seen per message id, when Pub/Sub does not report attempts.
    pub(super) seen: HashMap<String, u32>,
}

/// What a subscription shares with its deliveries.
pub(super) struct Shared {
    pub(super) subscription: PubSubSubscriptionRef,
    pub(super) ordering: bool,
    pub(super) leases: Arc<Leases<String>>,
    pub(super) closed: ClosedFlag,
    pub(super) state: Mutex<State>,
    pub(super) notify: Notify,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Puts a message to be handed out again (a redelivery in place), ahead of the rest.
    pub(super) fn redeliver(&self, ready: Ready) {
        self.lock().ready.push_front(ready);
        self.notify.notify_one();
    }

    /// The delivery of `key` was settled: the next message waiting behind it may go.
    pub(super) fn release(&self, key: Option<&str>) {
        let Some(key) = key.filter(|_| self.ordering) else {
            return;
        };
        let mut state = self.lock();
        if let Some(next) = state.keys.release(key) {
            state.ready.push_back(next);
            drop(state);
            self.notify.notify_one();
        }
    }

    /// A message is done with for this group: forget its attempt count.
    pub(super) fn forget(&self, message_id: &str) {
        self.lock().seen.remove(message_id);
    }
}
