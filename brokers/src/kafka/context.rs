//! The consumer context: tracks which partitions are this member's, so it never commits
//! or hands out a record of a partition given to another member.

use std::sync::{Arc, Mutex};

use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;

use tokio::sync::Notify;

use super::access::{AccessWatch, report};
use super::offsets::OffsetTracker;

/// Rebalance hooks of one group member.
pub(super) struct GroupContext {
    pub(super) tracker: Arc<Mutex<OffsetTracker>>,
    /// Signalled when the group assigned this member its partitions (possibly none).
    pub(super) assigned: Arc<Notify>,
    /// Where refusals of the broker's clients are reported.
    pub(super) watch: Arc<AccessWatch>,
}

impl ClientContext for GroupContext {
    fn error(&self, error: KafkaError, reason: &str) {
        report(&self.watch, &error, reason);
    }
}

impl ConsumerContext for GroupContext {
    /// Librdkafka commits the stored offsets (the settled prefix) itself before it gives
    /// partitions away; deliveries from them still in flight become stale and are redelivered
    /// to the new owner.
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let mut tracker = self.tracker.lock().expect("offset tracker");
        match rebalance {
            Rebalance::Revoke(partitions) => {
                for element in partitions.elements() {
                    tracker.revoke(element.topic(), element.partition());
                }
            }
            Rebalance::Assign(partitions) => {
                for element in partitions.elements() {
                    tracker.assign(element.topic(), element.partition());
                }
            }
            Rebalance::Error(_) => {}
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(_) = rebalance {
            self.assigned.notify_one();
        }
    }
}
