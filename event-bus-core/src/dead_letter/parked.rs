//! Parked dead letters: kept for a person to inspect, redrive or discard.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::BoxError;

use super::{DeadLetter, DeadLetterFilter, DeadLetterStats};

/// The parked store's backend failed.
#[derive(Debug, thiserror::Error)]
#[error("{backend} parked dead-letter store: {source}")]
pub struct ParkedStoreError {
    /// Name of the store's backend.
    pub backend: &'static str,
    /// The client library's error.
    pub source: BoxError,
}

impl ParkedStoreError {
    /// Wraps a client library error of the named backend.
    pub fn backend(backend: &'static str, source: impl Into<BoxError>) -> Self {
        Self {
            backend,
            source: source.into(),
        }
    }
}

/// Where parked dead letters are kept.
#[async_trait]
pub trait ParkedStore: Send + Sync {
    /// Keeps a dead letter; parking the same id again replaces it.
    async fn park(&self, letter: &DeadLetter) -> Result<(), ParkedStoreError>;
    /// Up to `limit` parked dead letters that pass `filter`, oldest first.
    async fn list(
        &self,
        filter: &DeadLetterFilter,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, ParkedStoreError>;
    /// The parked dead letter with this id.
    async fn get(&self, id: Uuid) -> Result<Option<DeadLetter>, ParkedStoreError>;
    /// Removes a parked dead letter; whether it was there.
    async fn remove(&self, id: Uuid) -> Result<bool, ParkedStoreError>;
    /// Removes the dead letters received before `cutoff` (retention); returns how many.
    async fn expire_before(&self, cutoff: DateTime<Utc>) -> Result<u64, ParkedStoreError>;

    /// Statistics of the parked dead letters that pass `filter`.
    async fn stats(&self, filter: &DeadLetterFilter) -> Result<DeadLetterStats, ParkedStoreError> {
        let letters = self.list(filter, usize::MAX).await?;
        let mut stats = DeadLetterStats::of(&letters);
        stats.parked = stats.total;
        Ok(stats)
    }
}

/// Parked dead letters in process memory; clones share them.
#[derive(Clone, Default)]
pub struct MemoryParkedStore {
    letters: Arc<Mutex<BTreeMap<Uuid, DeadLetter>>>,
}

impl MemoryParkedStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Uuid, DeadLetter>> {
        self.letters.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl ParkedStore for MemoryParkedStore {
    async fn park(&self, letter: &DeadLetter) -> Result<(), ParkedStoreError> {
        self.lock().insert(letter.id, letter.clone());
        Ok(())
    }

    async fn list(
        &self,
        filter: &DeadLetterFilter,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, ParkedStoreError> {
        Ok(self
            .lock()
            .values()
            .filter(|letter| filter.matches(letter))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn get(&self, id: Uuid) -> Result<Option<DeadLetter>, ParkedStoreError> {
        Ok(self.lock().get(&id).cloned())
    }

    async fn remove(&self, id: Uuid) -> Result<bool, ParkedStoreError> {
        Ok(self.lock().remove(&id).is_some())
    }

    async fn expire_before(&self, cutoff: DateTime<Utc>) -> Result<u64, ParkedStoreError> {
        let mut letters = self.lock();
        let before = letters.len();
        letters.retain(|_, letter| letter.received_at >= cutoff);
        Ok((before - letters.len()) as u64)
    }
}
