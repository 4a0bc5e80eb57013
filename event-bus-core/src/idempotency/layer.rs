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

/// How long a claim lasts unless its handler renews it.
const DEFAULT_LEASE: Duration = Duration::from_secs(30);

impl IdempotencyLayer {
    /// Remembers keys handled within `scope` in `store` for `ttl`. A running handler's claim
    /// is renewed every third of its lease (30 s unless [`lease`](Self::lease) says otherwise)
    /// and released when it ends, so the claim of a crashed process expires one lease later.
    pub fn new(store: Arc<dyn DedupStore>, scope: impl Into<String>, ttl: Duration) -> Self {
        Self {
            store,
            scope: scope.into(),
            ttl,
            lease: DEFAULT_LEASE,
        }
    }

    /// Sets how long a claim lasts without renewal (at least 100 ms).
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(100));
        self
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

impl<H: Handler> Idempotent<H> {
    /// Runs the inner handler, renewing the claim on `key` every third of the lease.
    async fn handle_renewing(&self, key: &str, event: &EventEnvelope) -> Result<(), HandlerError> {
        let lease = self.layer.lease;
        let handled = self.inner.handle(event);
        tokio::pin!(handled);
        // A handler that finishes at once needs no renewal timer (a timer-wheel entry).
        if let std::task::Poll::Ready(outcome) = futures::poll!(&mut handled) {
            return outcome;
        }
        let mut renewal =
            tokio::time::interval_at(tokio::time::Instant::now() + lease / 3, lease / 3);
        loop {
            tokio::select! {
                outcome = &mut handled => return outcome,
                _ = renewal.tick() => {
                    if let Err(error) = self.layer.store.renew(key, lease).await {
                        tracing::warn!(%error, idempotency_key = key, "renewing a claim failed; another delivery may take the key over");
                    }
                }
            }
        }
    }
}

#[async_trait]
impl<H: Handler> Handler for Idempotent<H> {
    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        let (scope, event_key) = (&self.layer.scope, &event.idempotency_key);
        let mut scoped_key = String::with_capacity(scope.len() + 1 + event_key.len());
        scoped_key.push_str(scope);
        scoped_key.push('/');
        scoped_key.push_str(event_key);
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
                return Err(HandlerError::deferred(
                    self.layer.lease,
                    DuplicateInProgress(key.to_owned()),
                ));
            }
            Claim::Acquired => {}
        }
        let outcome = self.handle_renewing(key, event).await;
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
