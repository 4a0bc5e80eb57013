//! Counters of what a subscription did with its deliveries, and waiting on them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// Live counters of one subscription.
#[derive(Debug, Default)]
pub struct SubscriptionStats {
    received: AtomicU64,
    handled: AtomicU64,
    skipped: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    dead_lettered: AtomicU64,
    changed: Notify,
}

/// A point-in-time copy of [`SubscriptionStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Deliveries taken from the broker.
    pub received: u64,
    /// Deliveries acknowledged after the handler succeeded (duplicates skipped by the
    /// idempotency layer count here too).
    pub handled: u64,
    /// Deliveries acknowledged without handling (another tenant's events).
    pub skipped: u64,
    /// Deliveries negatively acknowledged for a later attempt.
    pub retried: u64,
    /// Handler failures, panics included.
    pub failed: u64,
    /// Deliveries moved to the dead-letter topic.
    pub dead_lettered: u64,
}

impl StatsSnapshot {
    /// Deliveries whose outcome is final for this subscription: handled, skipped or dead-lettered.
    pub fn settled(&self) -> u64 {
        self.handled + self.skipped + self.dead_lettered
    }
}

impl std::fmt::Display for StatsSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "received {}, handled {}, skipped {}, retried {}, failed {}, dead-lettered {}",
            self.received,
            self.handled,
            self.skipped,
            self.retried,
            self.failed,
            self.dead_lettered
        )
    }
}

/// The final outcome of one delivery, for counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Received,
    Handled,
    Skipped,
    Retried,
    Failed,
    DeadLettered,
}

/// `wait_until` gave up before the condition held.
#[derive(Debug, thiserror::Error)]
#[error("condition not met within {timeout:?}; last counts: {last}")]
pub struct WaitTimeout {
    /// How long it waited.
    pub timeout: Duration,
    /// The counters when it gave up.
    pub last: StatsSnapshot,
}

impl SubscriptionStats {
    pub(crate) fn record(&self, outcome: Outcome) {
        let counter = match outcome {
            Outcome::Received => &self.received,
            Outcome::Handled => &self.handled,
            Outcome::Skipped => &self.skipped,
            Outcome::Retried => &self.retried,
            Outcome::Failed => &self.failed,
            Outcome::DeadLettered => &self.dead_lettered,
        };
        counter.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            received: self.received.load(Ordering::SeqCst),
            handled: self.handled.load(Ordering::SeqCst),
            skipped: self.skipped.load(Ordering::SeqCst),
            retried: self.retried.load(Ordering::SeqCst),
            failed: self.failed.load(Ordering::SeqCst),
            dead_lettered: self.dead_lettered.load(Ordering::SeqCst),
        }
    }

    /// Waits until `condition` holds for the counters, or fails after `timeout`.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        condition: impl Fn(&StatsSnapshot) -> bool,
    ) -> Result<StatsSnapshot, WaitTimeout> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.changed.notified();
            let snapshot = self.snapshot();
            if condition(&snapshot) {
                return Ok(snapshot);
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err(WaitTimeout {
                    timeout,
                    last: self.snapshot(),
                });
            }
        }
    }
}
