//! Publishing to a topic's stream, waiting for the stream's acknowledgement.

use std::sync::Arc;

use async_nats::jetstream;
use async_nats::jetstream::context::{PublishAckFuture, PublishError, PublishErrorKind};
use event_bus_core::kit::ClosedFlag;
use event_bus_core::{BusError, Message};

use super::streams::Streams;
use super::{NatsError, headers};

/// Sends messages with JetStream publish acknowledgements.
pub(super) struct NatsPublisher {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    streams: Arc<Streams>,
    closed: ClosedFlag,
}

impl NatsPublisher {
    pub(super) fn new(
        client: async_nats::Client,
        jetstream: jetstream::Context,
        streams: Arc<Streams>,
    ) -> Self {
        Self {
            client,
            jetstream,
            streams,
            closed: ClosedFlag::default(),
        }
    }

    /// Hands the message to the client; the returned future resolves with the stream's answer.
    async fn send(
        &self,
        subject: &str,
        message: &Message,
    ) -> Result<PublishAckFuture, PublishError> {
        self.jetstream
            .publish_with_headers(
                subject.to_owned(),
                headers::to_nats(message),
                message.payload.clone(),
            )
            .await
    }

    async fn send_and_wait(&self, subject: &str, message: &Message) -> Result<(), PublishError> {
        self.send(subject, message).await?.await.map(drop)
    }

    /// Publishes one message and waits for its acknowledgement. Should its stream be gone
    /// (deleted behind the bus's back), the stream is created again and the message sent once more.
    pub(super) async fn publish(&self, topic: &str, message: &Message) -> Result<(), BusError> {
        self.closed.ensure_open("publisher")?;
        let subject = self.streams.ensure(topic).await?;
        let sent = match self.send_and_wait(&subject, message).await {
            Err(error) if error.kind() == PublishErrorKind::StreamNotFound => {
                self.streams.forget(topic);
                let subject = self.streams.ensure(topic).await?;
                self.send_and_wait(&subject, message).await
            }
            sent => sent,
        };
        sent.map_err(|source| publish_error(topic, source))
    }

    /// Sends every message in order, then waits for all acknowledgements together.
    pub(super) async fn publish_batch(
        &self,
        topic: &str,
        messages: &[Message],
    ) -> Vec<Result<(), BusError>> {
        if let Some(refused) = self.closed.refuse_batch("publisher", messages.len()) {
            return refused;
        }
        let subject = match self.streams.ensure(topic).await {
            Ok(subject) => subject,
            Err(error) => {
                let error = Arc::new(error);
                return messages
                    .iter()
                    .map(|_| Err(NatsError::Batch(Arc::clone(&error)).into()))
                    .collect();
            }
        };
        let mut pending = Vec::with_capacity(messages.len());
        for message in messages {
            pending.push(self.send(&subject, message).await);
        }
        let acknowledged = pending.into_iter().map(|sent| async move {
            match sent {
                Ok(ack) => ack.await.map(drop),
                Err(error) => Err(error),
            }
        });
        futures::future::join_all(acknowledged)
            .await
            .into_iter()
            .map(|result| result.map_err(|source| publish_error(topic, source)))
            .collect()
    }

    /// Refuses further publishing and flushes what the client still holds (settlements
    /// of deliveries dropped unsettled, for example).
    pub(super) async fn close(&self) -> Result<(), BusError> {
        self.closed.close();
        self.client.flush().await.map_err(NatsError::Flush)?;
        Ok(())
    }
}

fn publish_error(topic: &str, source: PublishError) -> BusError {
    NatsError::Publish {
        topic: topic.to_owned(),
        source,
    }
    .into()
}
