//! Where handled idempotency keys are remembered.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::BoxError;

/// The state of an idempotency key when a delivery tries to claim it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Nobody handled the key; the caller now holds it.
    Acquired,
    /// Another delivery is handling the key right now.
    InProgress,
    /// The key was handled already.
    Done,
}

/// The dedup store could not be reached or answered badly.
#[derive(Debug, thiserror::Error)]
#[error("dedup store: {0}")]
pub struct DedupError(#[from] pub BoxError);

/// Remembers idempotency keys: claimed while a handler runs, done once it succeeded.
#[async_trait]
pub trait DedupStore: Send + Sync + 'static {
    /// Claims `key` for `lease` unless it is claimed or done.
    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, DedupError>;
    /// Extends the claim on `key` to `lease` from now, while its handler still runs; a key
    /// that is done, or no longer claimed, is left alone.
    async fn renew(&self, key: &str, lease: Duration) -> Result<(), DedupError>;
    /// Marks `key` handled for `ttl`.
    async fn complete(&self, key: &str, ttl: Duration) -> Result<(), DedupError>;
    /// Gives up a claim after a failure, so a redelivery can handle the key.
    async fn release(&self, key: &str) -> Result<(), DedupError>;
}
