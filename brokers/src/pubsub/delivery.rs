//! How a message handed out is settled: an ack, a nack (an ack deadline of 0 or of the
//! delay), or, on an ordered subscription, a redelivery in place.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use event_bus_core::kit::Settle;
use event_bus_core::{BusError, Message};

use super::lease::set_deadline;
use super::request_error;
use super::shared::{Ready, Shared};

/// Longest ack deadline Pub/Sub accepts, in seconds.
const MAX_DEADLINE_SECONDS: u64 = 600;

/// A message received and handed out, until it is settled.
pub(super) struct PubSubSettle {
    pub(super) shared: Arc<Shared>,
    pub(super) ready: Ready,
}

impl PubSubSettle {
    fn settled(&self) {
        let ready = &self.ready;
        self.shared.leases.release(&ready.received.ack_id);
        self.shared.forget(&ready.received.message.message_id);
        self.shared.release(ready.key());
    }

    /// An ordered message with a key is redelivered in place, so nothing behind it overtakes it.
    fn in_place(&self) -> bool {
        self.shared.ordering && self.ready.key().is_some()
    }
}

#[async_trait]
impl Settle for PubSubSettle {
    async fn ack(self) -> Result<(), BusError> {
        let outcome = self.ready.received.ack().await;
        self.settled();
        outcome.map_err(|status| request_error("ack", &self.shared.subscription.id(), status))
    }

    async fn retry(self, after: Duration, _: Message, _: u32) -> Result<(), BusError> {
        if self.in_place() {
            redeliver_later(self.shared, self.ready, after);
            return Ok(());
        }
        self.shared.leases.release(&self.ready.received.ack_id);
        set_deadline(
            &self.shared.subscription,
            vec![self.ready.received.ack_id.clone()],
            deadline_seconds(after),
        )
        .await
        .map_err(|status| request_error("nack", &self.shared.subscription.id(), status))
    }

    fn hand_back(self, _: Message, _: u32) {
        if self.in_place() {
            return redeliver_later(self.shared, self.ready, Duration::ZERO);
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        self.shared.leases.release(&self.ready.received.ack_id);
        let subscription = self.shared.subscription.clone();
        let ack_id = self.ready.received.ack_id;
        runtime.spawn(async move {
            if let Err(status) = set_deadline(&subscription, vec![ack_id], 0).await {
                tracing::debug!(%status, "pubsub: handing back an unsettled delivery failed; it returns when its deadline passes");
            }
        });
    }
}

/// Hands an ordered message out again after `delay`, its key kept busy meanwhile; if the
/// subscription closed by then, Pub/Sub gets it back instead.
fn redeliver_later(shared: Arc<Shared>, mut ready: Ready, delay: Duration) {
    ready.redeliveries += 1;
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        tokio::time::sleep(delay).await;
        if shared.closed.is_closed() {
            shared.leases.release(&ready.received.ack_id);
            let _ = set_deadline(&shared.subscription, vec![ready.received.ack_id], 0).await;
            return;
        }
        shared.redeliver(ready);
    });
}

/// The ack deadline that makes Pub/Sub deliver again after `delay`: whole seconds, rounded
/// up, at most 600.
fn deadline_seconds(delay: Duration) -> i32 {
    let seconds = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
    i32::try_from(seconds.min(MAX_DEADLINE_SECONDS)).unwrap_or(600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_become_whole_seconds_of_ack_deadline() {
        assert_eq!(deadline_seconds(Duration::ZERO), 0);
        assert_eq!(deadline_seconds(Duration::from_millis(20)), 1);
        assert_eq!(deadline_seconds(Duration::from_secs(2)), 2);
        assert_eq!(deadline_seconds(Duration::from_secs(3600)), 600);
    }
}
