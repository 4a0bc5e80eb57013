//! The panic layer: a handler that panics fails its attempt instead of taking the worker down.

use std::any::Any;
use std::panic::AssertUnwindSafe;

use async_trait::async_trait;
use futures::FutureExt;
use tower_layer::Layer;

use super::{Handler, HandlerError};
use crate::envelope::EventEnvelope;

/// Turns handler panics into retryable [`HandlerPanicked`] failures.
#[derive(Clone, Copy, Debug, Default)]
pub struct CatchPanicLayer;

impl<H> Layer<H> for CatchPanicLayer {
    type Service = CatchPanic<H>;

    fn layer(&self, inner: H) -> Self::Service {
        CatchPanic(inner)
    }
}

/// A handler whose panics are caught and reported as failures.
pub struct CatchPanic<H>(H);

/// The handler panicked with this message.
#[derive(Debug, thiserror::Error)]
#[error("handler panicked: {0}")]
pub struct HandlerPanicked(pub String);

impl HandlerPanicked {
    /// Reads the message out of a panic payload.
    pub fn from_payload(payload: &(dyn Any + Send)) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_owned());
        Self(message)
    }
}

#[async_trait]
impl<H: Handler> Handler for CatchPanic<H> {
    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        match AssertUnwindSafe(self.0.handle(event)).catch_unwind().await {
            Ok(outcome) => outcome,
            Err(payload) => Err(HandlerError::retryable(HandlerPanicked::from_payload(
                &*payload,
            ))),
        }
    }
}
