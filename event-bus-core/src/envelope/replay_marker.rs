//! Marking replayed events, and a handler wrapper that leaves them alone.

use async_trait::async_trait;

use super::EventEnvelope;
use crate::handler::{Handler, HandlerError};

/// Header set to `true` on every replayed event.
pub const REPLAYED_HEADER: &str = "x-replayed";

impl EventEnvelope {
    /// Whether this event is a replay of a stored event rather than a new one.
    pub fn is_replay(&self) -> bool {
        self.headers
            .get(REPLAYED_HEADER)
            .is_some_and(|v| v == "true")
    }

    /// This event marked as a replay.
    #[must_use]
    pub fn into_replay(mut self) -> Self {
        self.headers
            .insert(REPLAYED_HEADER.to_owned(), "true".to_owned());
        self
    }
}

/// Wraps a handler with side effects (a saga, an email sender) so replayed events are
/// acknowledged without calling it, unless replays are allowed.
#[derive(Clone, Debug)]
pub struct SkipReplays<H> {
    inner: H,
    allow_replays: bool,
}

impl<H> SkipReplays<H> {
    /// Skips replayed events.
    pub fn new(inner: H) -> Self {
        Self {
            inner,
            allow_replays: false,
        }
    }

    /// Calls the handler for replayed events too.
    #[must_use]
    pub fn allow_replays(mut self, allow: bool) -> Self {
        self.allow_replays = allow;
        self
    }
}

/// Wraps `handler` so that replayed events do not reach it.
pub fn skip_replays<H: Handler>(handler: H) -> SkipReplays<H> {
    SkipReplays::new(handler)
}

#[async_trait]
impl<H: Handler> Handler for SkipReplays<H> {
    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        if event.is_replay() && !self.allow_replays {
            tracing::debug!(event_id = %event.id, "replayed event skipped");
            return Ok(());
        }
        self.inner.handle(event).await
    }
}
