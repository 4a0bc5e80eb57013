//! What consumes events: the [`Handler`] trait, its outcome, and adapters from closures.

mod catch_panic;
mod circuit_breaker;
mod handler_fn;
mod time_limit;
mod typed;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::envelope::EventEnvelope;
use crate::error::BoxError;

pub use catch_panic::{CatchPanic, CatchPanicLayer, HandlerPanicked};
pub use circuit_breaker::{CircuitBreaker, CircuitBreakerLayer, CircuitOpen, CircuitState};
pub use handler_fn::{HandlerFn, handler_fn};
pub use time_limit::{HandlerTimedOut, TimeLimitLayer, TimeLimited};
pub use typed::{Typed, typed};

/// Why a handler did not handle an event.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// May succeed later; the event is redelivered with backoff up to the attempt limit.
    #[error("retryable failure: {0}")]
    Retryable(BoxError),
    /// Will never succeed; the event goes to the dead-letter topic at once.
    #[error("permanent failure: {0}")]
    Permanent(BoxError),
    /// Not handled now, and not a failure (the handler was not run: a circuit is open, or
    /// another delivery of the same key is being handled): the event is delivered again after
    /// `after`, whatever its attempt, and never dead-lettered for this.
    #[error("deferred for {after:?}: {reason}")]
    Deferred {
        /// When to deliver it again.
        after: Duration,
        /// Why it was not handled.
        reason: BoxError,
    },
}

impl HandlerError {
    /// A failure that may succeed on a later attempt.
    pub fn retryable(error: impl Into<BoxError>) -> Self {
        Self::Retryable(error.into())
    }

    /// A failure that no retry can fix.
    pub fn permanent(error: impl Into<BoxError>) -> Self {
        Self::Permanent(error.into())
    }

    /// Not handled now, for `reason`; deliver it again after `after`.
    pub fn deferred(after: Duration, reason: impl Into<BoxError>) -> Self {
        Self::Deferred {
            after,
            reason: reason.into(),
        }
    }
}

/// Handles one event at a time; may be called concurrently for different events.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Handles the event.
    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError>;
}

#[async_trait]
impl<H: Handler + ?Sized> Handler for Arc<H> {
    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        (**self).handle(event).await
    }
}

#[async_trait]
impl<H: Handler + ?Sized> Handler for Box<H> {
    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        (**self).handle(event).await
    }
}
