//! The relay: publishes pending outbox entries to the bus, oldest first, at least once.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::StoreError;
use event_bus_core::bus::EventBus;
use event_bus_core::error::BusError;
use event_bus_core::topics::TopicNames;
use event_bus_core::transport::Publisher;

use super::Outbox;

/// What one relay pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RelayReport {
    /// Entries the broker confirmed and that were marked published.
    pub published: usize,
    /// Whether a publish failed; the entry and everything after it stay pending.
    pub failed: bool,
}

/// Moves outbox entries to the broker. An entry is marked published only after the broker
/// accepted it; a failure leaves it (and the ones after it, to keep order) for the next pass.
pub struct OutboxRelay {
    outbox: Arc<dyn Outbox>,
    publisher: Arc<dyn Publisher>,
    topics: TopicNames,
    batch_size: usize,
}

impl OutboxRelay {
    /// A relay publishing through `publisher` to the topics of `topics`.
    pub fn new(outbox: Arc<dyn Outbox>, publisher: Arc<dyn Publisher>, topics: TopicNames) -> Self {
        Self {
            outbox,
            publisher,
            topics,
            batch_size: 100,
        }
    }

    /// A relay publishing to `bus`'s broker and topics.
    pub fn for_bus(outbox: Arc<dyn Outbox>, bus: &EventBus) -> Self {
        let publisher: Arc<dyn Publisher> = bus.broker().clone();
        Self::new(outbox, publisher, bus.topics().clone())
    }

    /// Sets how many entries one pass takes (at least 1).
    #[must_use]
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Publishes one batch of pending entries in order, stopping at the first failure.
    pub async fn relay_once(&self) -> Result<RelayReport, StoreError> {
        let pending = self.outbox.pending(self.batch_size).await?;
        let mut confirmed = Vec::with_capacity(pending.len());
        let mut failed = false;
        for entry in pending {
            let topic = self.topics.topic(&entry.envelope.event_type);
            let sent = match entry.envelope.to_message() {
                Ok(message) => self.publisher.publish(&topic, message).await,
                Err(error) => Err(BusError::Encode(error)),
            };
            match sent {
                Ok(()) => confirmed.push(entry.id),
                Err(error) => {
                    tracing::warn!(%error, entry = entry.id, %topic, "outbox publish failed");
                    self.outbox
                        .record_failure(entry.id, &error.to_string())
                        .await?;
                    failed = true;
                    break;
                }
            }
        }
        self.outbox.mark_published(&confirmed).await?;
        Ok(RelayReport {
            published: confirmed.len(),
            failed,
        })
    }

    /// Relays until `shutdown` is cancelled: a full batch is followed by the next at once;
    /// otherwise (nothing pending, or a failure) it waits `poll` first.
    pub async fn run(&self, poll: Duration, shutdown: CancellationToken) {
        loop {
            let wait = match self.relay_once().await {
                Ok(report) => report.failed || report.published < self.batch_size,
                Err(error) => {
                    tracing::warn!(%error, "outbox relay could not read the outbox");
                    true
                }
            };
            if wait {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(poll) => {}
                }
            } else if shutdown.is_cancelled() {
                return;
            }
        }
    }
}
