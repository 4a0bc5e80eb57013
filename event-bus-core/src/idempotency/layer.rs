//! The idempotency layer: wraps any handler so each idempotency key is handled once.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tower_layer::Layer;

use super::{Claim, DedupStore};
use crate::envelope::EventEnvelope;
use crate::handler::{Handler, HandlerError};

/// Adds idempotent handling to a handler. Keys are remembered per scope (the consumer
/// group), so each group handles every key once.
#[derive(Clone)]
pub struct IdempotencyLayer {
    store: Arc<dyn DedupStore>,
    scope: String,
    ttl: Duration,
    lease: Duration,
}

impl IdempotencyLayer {
    /// Remembers keys handled within `scope` in `store` for `ttl`; a claim held by a running
    /// handler lasts at most five minutes, after which a redelivery may take it over.
    pub fn new(store: Arc<dyn DedupStore>, scope: impl Into<String>, ttl: Duration) -> Self {
        Self {
            store,
            scope: scope.into(),
            ttl,
            lease: Duration::from_secs(300),
        }
    }
}

impl<H> Layer<H> for IdempotencyLayer {
    type Service = Idempotent<H>;

    fn layer(&self, inner: H) -> Self::Service {
        Idempotent {
            inner,
            layer: self.clone(),
        }
    }
}

/// A handler that skips events whose idempotency key was handled already.
pub struct Idempotent<H> {
    inner: H,
    layer: IdempotencyLayer,
}

/// A duplicate arrived while the first delivery of its key is still being handled.
#[derive(Debug, thiserror::Error)]
#[error("idempotency key `{0}` is being handled by another delivery")]
pub struct DuplicateInProgress(String);

#[async_trait]
impl<H: Handler> Handler for Idempotent<H> {
    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        let scoped_key = format!("{}/{}", self.layer.scope, event.idempotency_key);
        let key = scoped_key.as_str();
        let store = &self.layer.store;
        match store
            .claim(key, self.layer.lease)
            .await
            .map_err(HandlerError::retryable)?
        {
            Claim::Done => {
                tracing::debug!(idempotency_key = key, event_id = %event.id, "duplicate event skipped");
                return Ok(());
            }
            Claim::InProgress => {
                return Err(HandlerError::retryable(DuplicateInProgress(key.to_owned())));
            }
            Claim::Acquired => {}
        }
        let outcome = self.inner.handle(event).await;
        match &outcome {
            Ok(()) => store
                .complete(key, self.layer.ttl)
                .await
                .map_err(HandlerError::retryable)?,
            Err(_) => store.release(key).await.map_err(HandlerError::retryable)?,
        }
        outcome
    }
}
