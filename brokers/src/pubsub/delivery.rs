//! One message handed out, settled with an ack, a nack (an ack deadline of 0 or of the
//! delay), or, on an ordered subscription, a redelivery in place.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use event_bus_core::{BusError, Delivery, Message, Nack};

use super::lease::set_deadline;
use super::request_error;
use super::subscription::{Ready, Shared};

/// Longest ack deadline Pub/Sub accepts, in seconds.
const MAX_DEADLINE_SECONDS: u64 = 600;

/// A delivered message; dropped unsettled, it is handed back at once.
pub(super) struct PubSubDelivery {
    shared: Arc<Shared>,
    ready: Option<Ready>,
    message: Message,
    attempt: u32,
}

impl PubSubDelivery {
    pub(super) fn new(shared: Arc<Shared>, ready: Ready, attempt: u32) -> Self {
        Self {
            shared,
            message: ready.message.clone(),
            ready: Some(ready),
            attempt,
        }
    }

    async fn ack_message(&mut self) -> Result<(), BusError> {
        let Some(ready) = self.ready.take() else {
            return Ok(());
        };
        let outcome = ready.received.ack().await;
        self.settled(&ready);
        outcome.map_err(|status| request_error("ack", &self.shared.subscription.id(), status))
    }

    async fn hand_back(&mut self, delay: Duration) -> Result<(), BusError> {
        let Some(ready) = self.ready.take() else {
            return Ok(());
        };
        // An ordered message with a key is redelivered in place, so nothing behind it
        // overtakes it.
        if self.shared.ordering && ready.key().is_some() {
            redeliver_later(Arc::clone(&self.shared), ready, delay);
            return Ok(());
        }
        let seconds = deadline_seconds(delay);
        self.shared.leases.release(&ready.received.ack_id);
        set_deadline(
            &self.shared.subscription,
            vec![ready.received.ack_id.clone()],
            seconds,
        )
        .await
        .map_err(|status| request_error("nack", &self.shared.subscription.id(), status))
    }

    fn settled(&self, ready: &Ready) {
        self.shared.leases.release(&ready.received.ack_id);
        self.shared.forget(&ready.received.message.message_id);
        self.shared.release(ready.key());
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
        if shared.closed.load(Ordering::SeqCst) {
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

#[async_trait]
impl Delivery for PubSubDelivery {
    fn message(&self) -> &Message {
        &self.message
    }

    fn attempt(&self) -> u32 {
        self.attempt
    }

    async fn ack(mut self: Box<Self>) -> Result<(), BusError> {
        self.ack_message().await
    }

    async fn nack(mut self: Box<Self>, nack: Nack) -> Result<(), BusError> {
        match nack {
            Nack::Requeue => self.hand_back(Duration::ZERO).await,
            Nack::RequeueAfter(delay) => self.hand_back(delay).await,
            Nack::Discard => self.ack_message().await,
        }
    }
}

impl Drop for PubSubDelivery {
    fn drop(&mut self) {
        let Some(ready) = self.ready.take() else {
            return;
        };
        if self.shared.ordering && ready.key().is_some() {
            return redeliver_later(Arc::clone(&self.shared), ready, Duration::ZERO);
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        self.shared.leases.release(&ready.received.ack_id);
        let subscription = self.shared.subscription.clone();
        runtime.spawn(async move {
            if let Err(status) = set_deadline(&subscription, vec![ready.received.ack_id], 0).await
            {
                tracing::debug!(%status, "pubsub: handing back an unsettled delivery failed; it returns when its deadline passes");
            }
        });
    }
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
