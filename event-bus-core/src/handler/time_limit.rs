//! The time-limit layer: a handler still running past its limit is cancelled and fails its
//! attempt, so a hung handler neither holds its slot forever nor keeps its claim alive.

use std::time::Duration;

use async_trait::async_trait;
use tower_layer::Layer;

use super::{Handler, HandlerError};
use crate::envelope::EventEnvelope;

/// Cancels a handler after `limit` and reports a retryable [`HandlerTimedOut`] failure.
#[derive(Clone, Copy, Debug)]
pub struct TimeLimitLayer {
    limit: Duration,
}

impl TimeLimitLayer {
    /// Cancels handlers still running after `limit`.
    pub fn new(limit: Duration) -> Self {
        Self { limit }
    }
}

impl<H> Layer<H> for TimeLimitLayer {
    type Service = TimeLimited<H>;

    fn layer(&self, inner: H) -> Self::Service {
        TimeLimited {
            inner,
            limit: self.limit,
        }
    }
}

/// A handler cancelled when it runs longer than its limit.
pub struct TimeLimited<H> {
    inner: H,
    limit: Duration,
}

/// The handler did not finish within its time limit and was cancelled.
#[derive(Debug, thiserror::Error)]
#[error("handler timed out: still running after {limit:?}, cancelled")]
pub struct HandlerTimedOut {
    /// The limit it ran into.
    pub limit: Duration,
}

#[async_trait]
impl<H: Handler> Handler for TimeLimited<H> {
    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        let deadline = tokio::time::Instant::now() + self.limit;
        let mut handled = self.inner.handle(event);
        // A handler that finishes at its first poll needs no timer (a timer-wheel entry).
        if let std::task::Poll::Ready(outcome) = futures::poll!(&mut handled) {
            return outcome;
        }
        tokio::time::timeout_at(deadline, handled)
            .await
            .unwrap_or_else(|_| {
                Err(HandlerError::retryable(HandlerTimedOut {
                    limit: self.limit,
                }))
            })
    }
}
