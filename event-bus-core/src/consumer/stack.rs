//! The consume stack: an ordered list of layers around the handler. Each layer sees the
//! delivery, may decide its [`Disposition`] itself, or passes it on to the rest of the stack.

use std::sync::Arc;

use async_trait::async_trait;

use super::disposition::Disposition;
use crate::envelope::{EventEnvelope, wire_headers};
use crate::handler::Handler;
use crate::message::Message;
use crate::telemetry::metrics::UNKNOWN_EVENT_TYPE;
use crate::transport::SubscriptionConfig;

/// One delivery on its way down the stack.
pub struct Inbound<'a> {
    message: &'a Message,
    attempt: u32,
    config: &'a SubscriptionConfig,
    envelope: Option<EventEnvelope>,
}

impl<'a> Inbound<'a> {
    /// The `attempt`-th delivery (from 1) of `message` to the subscription of `config`.
    pub fn new(message: &'a Message, attempt: u32, config: &'a SubscriptionConfig) -> Self {
        Self {
            message,
            attempt,
            config,
            envelope: None,
        }
    }

    /// The message as received.
    pub fn message(&self) -> &'a Message {
        self.message
    }

    /// How many times the message has been delivered to this group, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The subscription the delivery belongs to.
    pub fn config(&self) -> &'a SubscriptionConfig {
        self.config
    }

    /// The decoded event, once the decode layer has run.
    pub fn envelope(&self) -> Option<&EventEnvelope> {
        self.envelope.as_ref()
    }

    /// Sets the decoded event.
    pub fn set_envelope(&mut self, envelope: EventEnvelope) {
        self.envelope = Some(envelope);
    }

    /// The event type: the decoded event's, else the one the message's headers name, else
    /// `unknown`.
    pub fn event_type(&self) -> &str {
        match &self.envelope {
            Some(envelope) => &envelope.event_type,
            None => self
                .message
                .headers
                .get(wire_headers::EVENT_TYPE)
                .map_or(UNKNOWN_EVENT_TYPE, String::as_str),
        }
    }
}

/// A step of the consume stack.
#[async_trait]
pub trait ConsumeLayer: Send + Sync + 'static {
    /// Decides the delivery's disposition, or returns what `next.run(inbound)` decides.
    async fn consume(&self, inbound: &mut Inbound<'_>, next: Next<'_>) -> Disposition;
}

/// The rest of the stack below a layer, ending in the handler.
pub struct Next<'a> {
    rest: &'a [Arc<dyn ConsumeLayer>],
    handler: &'a dyn Handler,
}

impl Next<'_> {
    /// Runs the rest of the stack. Without a decoded event the handler cannot run, so the
    /// end of a stack without the decode layer is a malformed payload.
    pub async fn run(self, inbound: &mut Inbound<'_>) -> Disposition {
        match self.rest.split_first() {
            Some((layer, rest)) => {
                let next = Next {
                    rest,
                    handler: self.handler,
                };
                layer.consume(inbound, next).await
            }
            None => match inbound.envelope() {
                Some(envelope) => match self.handler.handle(envelope).await {
                    Ok(()) => Disposition::Handled,
                    Err(error) => Disposition::Failed(error),
                },
                None => Disposition::dead_letter(
                    crate::dead_letter::DeadLetterReason::MalformedPayload,
                    "no layer decoded the event",
                ),
            },
        }
    }
}

/// The ordered layers of one subscription and its handler.
#[derive(Clone)]
pub struct ConsumeStack {
    layers: Vec<Arc<dyn ConsumeLayer>>,
    handler: Arc<dyn Handler>,
}

impl ConsumeStack {
    /// `layers`, outermost first, around `handler`.
    pub fn new(layers: Vec<Arc<dyn ConsumeLayer>>, handler: Arc<dyn Handler>) -> Self {
        Self { layers, handler }
    }

    /// Runs the delivery through every layer and the handler.
    pub async fn run(&self, inbound: &mut Inbound<'_>) -> Disposition {
        Next {
            rest: &self.layers,
            handler: &*self.handler,
        }
        .run(inbound)
        .await
    }
}
