//! The publishing half of a backend.

use async_trait::async_trait;

use crate::error::BusError;
use crate::message::Message;

/// Sends messages to topics.
#[async_trait]
pub trait Publisher: Send + Sync {
    /// Sends one message and returns once the broker has accepted it.
    async fn publish(&self, topic: &str, message: Message) -> Result<(), BusError>;

    /// Sends several messages; the result at index `i` is the outcome of `messages[i]`.
    async fn publish_batch(
        &self,
        topic: &str,
        messages: Vec<Message>,
    ) -> Vec<Result<(), BusError>> {
        let mut results = Vec::with_capacity(messages.len());
        for message in messages {
            results.push(self.publish(topic, message).await);
        }
        results
    }

    /// Flushes everything buffered and refuses further publishing.
    async fn close(&self) -> Result<(), BusError>;
}
