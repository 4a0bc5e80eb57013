//! The relay: publishes pending outbox entries to the bus, oldest first, at least once; several
//! relays share an outbox through claims with a lease.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::store::StoreError;
use event_bus_core::bus::EventBus;
use event_bus_core::envelope::ContentMode;
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

/// Moves outbox entries to the broker. Each pass claims a batch for a lease, publishes it in
/// order and marks an entry published only after the broker accepted it; a failure leaves it
/// (and the rest of the batch, to keep order) for the next pass. Relays on other replicas may
/// run on the same outbox: none takes an entry, or a later entry of its aggregate, that another
/// claimed until that claim is released or its lease has passed.
pub struct OutboxRelay {
    outbox: Arc<dyn Outbox>,
    publisher: Arc<dyn Publisher>,
    topics: TopicNames,
    content_mode: ContentMode,
    batch_size: usize,
    lease: Duration,
    id: Uuid,
}

impl OutboxRelay {
    /// A relay publishing through `publisher` to the topics of `topics`.
    pub fn new(outbox: Arc<dyn Outbox>, publisher: Arc<dyn Publisher>, topics: TopicNames) -> Self {
        Self {
            outbox,
            publisher,
            topics,
            content_mode: ContentMode::default(),
            batch_size: 100,
            lease: Duration::from_secs(30),
            id: Uuid::now_v7(),
        }
    }

    /// A relay publishing to `bus`'s broker and topics, in its CloudEvents content mode.
    pub fn for_bus(outbox: Arc<dyn Outbox>, bus: &EventBus) -> Self {
        let publisher: Arc<dyn Publisher> = bus.broker().clone();
        Self::new(outbox, publisher, bus.topics().clone()).content_mode(bus.settings().content_mode)
    }

    /// Sets the CloudEvents content mode events are published in (default structured).
    #[must_use]
    pub fn content_mode(mut self, mode: ContentMode) -> Self {
        self.content_mode = mode;
        self
    }

    /// Sets how many entries one pass takes (at least 1).
    #[must_use]
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Sets how long a claimed batch is this relay's (default 30 s, at least 100 ms): a relay
    /// that dies holding a batch delays it this long. Publishing stops at four fifths of it,
    /// leaving the rest of the batch to the next pass, so no other relay takes an entry that
    /// this one may still publish.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(100));
        self
    }

    /// The id this relay claims entries under.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// Claims one batch of pending entries and publishes it in order, stopping at the first
    /// failure; the claims on what it did not publish are released.
    pub async fn relay_once(&self) -> Result<RelayReport, StoreError> {
        let claimed_at = Instant::now();
        let claimed = self
            .outbox
            .claim(self.id, self.batch_size, self.lease)
            .await?;
        let publish_until = claimed_at + self.lease.mul_f64(0.8);
        let mut confirmed = Vec::with_capacity(claimed.len());
        let mut unpublished = Vec::new();
        let mut failed = false;
        let mut entries = claimed.into_iter();
        for entry in entries.by_ref() {
            if Instant::now() >= publish_until {
                tracing::warn!(entry = entry.id, lease = ?self.lease, "outbox lease nearly over; leaving the rest of the batch");
                unpublished.push(entry.id);
                break;
            }
            let topic = self.topics.topic(&entry.envelope.event_type);
            let sent = match entry.envelope.to_message_in(self.content_mode) {
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
                    unpublished.push(entry.id);
                    failed = true;
                    break;
                }
            }
        }
        unpublished.extend(entries.map(|entry| entry.id));
        self.outbox.mark_published(&confirmed).await?;
        self.outbox.release(self.id, &unpublished).await?;
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
