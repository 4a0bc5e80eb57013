//! Running subscriptions: the consume stack of layers each delivery goes through, the loop
//! that carries out what the stack decided, its counters, and the handle that stops it.

mod disposition;
pub mod layers;
mod stack;
mod stats;
mod worker;

use std::sync::Arc;

use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use disposition::Disposition;
pub use stack::{ConsumeLayer, ConsumeStack, Inbound, Next};
pub use stats::{StatsSnapshot, SubscriptionStats, WaitTimeout};
pub(crate) use worker::Worker;

use crate::transport::{Subscription, SubscriptionConfig};

/// A running subscription; cheap to clone.
#[derive(Clone)]
pub struct SubscriptionHandle(Arc<HandleInner>);

struct HandleInner {
    config: SubscriptionConfig,
    stats: Arc<SubscriptionStats>,
    shutdown: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl SubscriptionHandle {
    pub(crate) fn spawn(worker: Worker, subscription: Box<dyn Subscription>) -> Self {
        let worker = Arc::new(worker);
        let shutdown = CancellationToken::new();
        let inner = HandleInner {
            config: worker.config.clone(),
            stats: Arc::clone(&worker.stats),
            shutdown: shutdown.clone(),
            task: Mutex::new(Some(tokio::spawn(worker.run(subscription, shutdown)))),
        };
        Self(Arc::new(inner))
    }

    /// What the subscription was opened with.
    pub fn config(&self) -> &SubscriptionConfig {
        &self.0.config
    }

    /// Live counters of the subscription.
    pub fn stats(&self) -> &SubscriptionStats {
        &self.0.stats
    }

    /// Stops taking deliveries, waits for the ones in flight to be handled and settled, and
    /// leaves the consumer group. Undelivered events stay with the group.
    pub async fn shutdown(&self) {
        self.0.shutdown.cancel();
        if let Some(task) = self.0.task.lock().await.take()
            && let Err(error) = task.await
        {
            tracing::error!(%error, topic = %self.0.config.topic, "the subscription task failed");
        }
    }
}
