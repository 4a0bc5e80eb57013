//! [`SealingBroker`]: the publish side. Wraps any backend so that every message it publishes
//! carries its personal fields sealed, whoever publishes (the bus, an outbox relay, a saga).

use std::sync::Arc;

use async_trait::async_trait;
use event_bus_core::envelope::EventEnvelope;
use event_bus_core::error::BusError;
use event_bus_core::message::Message;
use event_bus_core::transport::{
    Broker, Capabilities, Publisher, Subscriber, Subscription, SubscriptionConfig,
};

use crate::declare::{SEALED_HEADER, SUBJECT_HEADER};
use crate::sealer::Sealer;

/// A backend whose publishes seal declared personal fields first; subscribing is the inner
/// backend's, so deliveries (and the dead letters made of them) stay sealed until a handler
/// opens them with [`OpenLayer`](crate::OpenLayer).
pub struct SealingBroker {
    inner: Arc<dyn Broker>,
    sealer: Sealer,
}

impl SealingBroker {
    /// Seals what is published through `inner` with `sealer`.
    pub fn new(inner: Arc<dyn Broker>, sealer: Sealer) -> Self {
        Self { inner, sealer }
    }

    /// The message with its envelope's personal fields sealed; untouched when it carries no
    /// declaration, is already sealed, or is not an envelope (a dead letter's own payload is
    /// the message as delivered, so already sealed).
    async fn seal(&self, mut message: Message) -> Result<Message, BusError> {
        if !mentions(&message.payload, SUBJECT_HEADER) || mentions(&message.payload, SEALED_HEADER)
        {
            return Ok(message);
        }
        let Ok(mut envelope) = EventEnvelope::from_message(&message) else {
            return Ok(message);
        };
        if self
            .sealer
            .seal(&mut envelope)
            .await
            .map_err(|error| BusError::backend(self.inner.name(), error))?
        {
            message.payload = serde_json::to_vec(&envelope)?.into();
        }
        Ok(message)
    }
}

/// Whether the header name occurs in the payload, quoted as a JSON key would be.
fn mentions(payload: &[u8], header: &str) -> bool {
    let needle = format!("\"{header}\"");
    payload
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[async_trait]
impl Publisher for SealingBroker {
    async fn publish(&self, topic: &str, message: Message) -> Result<(), BusError> {
        let message = self.seal(message).await?;
        self.inner.publish(topic, message).await
    }

    async fn publish_batch(
        &self,
        topic: &str,
        messages: Vec<Message>,
    ) -> Vec<Result<(), BusError>> {
        let total = messages.len();
        let mut sealed = Vec::with_capacity(total);
        let mut failed = Vec::new();
        for (index, message) in messages.into_iter().enumerate() {
            match self.seal(message).await {
                Ok(message) => sealed.push(message),
                Err(error) => failed.push((index, error)),
            }
        }
        let mut outcomes = self.inner.publish_batch(topic, sealed).await.into_iter();
        let mut failed = failed.into_iter().peekable();
        (0..total)
            .map(|index| match failed.next_if(|(at, _)| *at == index) {
                Some((_, error)) => Err(error),
                None => outcomes.next().unwrap_or_else(|| {
                    Err(BusError::MissingBatchResult {
                        backend: self.inner.name(),
                    })
                }),
            })
            .collect()
    }

    async fn close(&self) -> Result<(), BusError> {
        self.inner.close().await
    }
}

#[async_trait]
impl Subscriber for SealingBroker {
    async fn subscribe(
        &self,
        config: &SubscriptionConfig,
    ) -> Result<Box<dyn Subscription>, BusError> {
        self.inner.subscribe(config).await
    }
}

impl Broker for SealingBroker {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
}
