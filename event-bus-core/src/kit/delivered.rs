//! The one delivery type every backend hands out: it owns the message and its attempt number,
//! settles exactly once, and hands the message back when dropped unsettled.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::BusError;
use crate::message::Message;
use crate::transport::{Delivery, Nack};

/// What a backend does to settle one message it handed out. [`Delivered`] calls exactly one
/// of these, once.
#[async_trait]
pub trait Settle: Send + Sync + Sized + 'static {
    /// The message is done for its consumer group (handled, or moved elsewhere).
    async fn ack(self) -> Result<(), BusError>;

    /// Deliver the message to the group again, not before `after` has passed. `message` and
    /// `attempt` are handed back for backends that re-send a copy.
    async fn retry(self, after: Duration, message: Message, attempt: u32) -> Result<(), BusError>;

    /// The delivery was dropped unsettled: give the message back to the group at once. Runs
    /// inside `Drop`, so it must not block; the default spawns `retry` with no delay on the
    /// current runtime (without one, the broker's own redelivery takes over).
    fn hand_back(self, message: Message, attempt: u32) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            if let Err(error) = self.retry(Duration::ZERO, message, attempt).await {
                tracing::debug!(%error, "handing back an unsettled delivery failed; the broker redelivers it later");
            }
        });
    }
}

/// A received message and how to settle it.
pub struct Delivered<S: Settle> {
    message: Message,
    attempt: u32,
    settle: Option<S>,
}

impl<S: Settle> Delivered<S> {
    /// A delivery of `message`, its `attempt`-th to this consumer group (from 1).
    pub fn new(message: Message, attempt: u32, settle: S) -> Self {
        Self {
            message,
            attempt: attempt.max(1),
            settle: Some(settle),
        }
    }

    /// The same delivery, boxed as the transport contract hands it out.
    pub fn boxed(self) -> Box<dyn Delivery> {
        Box::new(self)
    }

    fn take(&mut self) -> (S, Message) {
        let settle = self.settle.take().expect("a delivery is settled once");
        (settle, std::mem::take(&mut self.message))
    }
}

#[async_trait]
impl<S: Settle> Delivery for Delivered<S> {
    fn message(&self) -> &Message {
        &self.message
    }

    fn attempt(&self) -> u32 {
        self.attempt
    }

    fn set_header(&mut self, name: &str, value: String) {
        self.message.headers.insert(name.to_owned(), value);
    }

    async fn ack(mut self: Box<Self>) -> Result<(), BusError> {
        let (settle, _) = self.take();
        settle.ack().await
    }

    async fn nack(mut self: Box<Self>, nack: Nack) -> Result<(), BusError> {
        let attempt = self.attempt;
        let (settle, message) = self.take();
        match nack {
            Nack::Discard => settle.ack().await,
            Nack::Requeue => settle.retry(Duration::ZERO, message, attempt).await,
            Nack::RequeueAfter(after) => settle.retry(after, message, attempt).await,
        }
    }
}

impl<S: Settle> Drop for Delivered<S> {
    fn drop(&mut self) {
        if let Some(settle) = self.settle.take() {
            settle.hand_back(std::mem::take(&mut self.message), self.attempt);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<String>>>);

    #[async_trait]
    impl Settle for Log {
        async fn ack(self) -> Result<(), BusError> {
            self.0.lock().unwrap().push("ack".into());
            Ok(())
        }

        async fn retry(
            self,
            after: Duration,
            message: Message,
            attempt: u32,
        ) -> Result<(), BusError> {
            let key = message.key.unwrap_or_default();
            self.0.lock().unwrap().push(format!(
                "retry {key} #{attempt} after {}ms",
                after.as_millis()
            ));
            Ok(())
        }

        fn hand_back(self, message: Message, attempt: u32) {
            let key = message.key.unwrap_or_default();
            self.0
                .lock()
                .unwrap()
                .push(format!("hand back {key} #{attempt}"));
        }
    }

    fn delivered(log: &Log, attempt: u32) -> Box<dyn Delivery> {
        let message = Message {
            key: Some("k".into()),
            ..Message::default()
        };
        Delivered::new(message, attempt, log.clone()).boxed()
    }

    #[tokio::test]
    async fn each_settlement_reaches_the_backend_once() {
        let log = Log::default();
        delivered(&log, 1).ack().await.unwrap();
        delivered(&log, 2).nack(Nack::Discard).await.unwrap();
        delivered(&log, 3).nack(Nack::Requeue).await.unwrap();
        delivered(&log, 4)
            .nack(Nack::RequeueAfter(Duration::from_millis(250)))
            .await
            .unwrap();
        drop(delivered(&log, 5));
        assert_eq!(
            *log.0.lock().unwrap(),
            [
                "ack",
                "ack",
                "retry k #3 after 0ms",
                "retry k #4 after 250ms",
                "hand back k #5"
            ]
        );
    }
}
