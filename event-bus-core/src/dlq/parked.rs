//! Parked dead letters: kept for a person to inspect, redrive or discard.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use uuid::Uuid;

use crate::store::StoreError;

use super::{DeadLetter, DeadLetterFilter, DeadLetterStats};

/// Where parked dead letters are kept.
#[async_trait]
pub trait ParkedStore: Send + Sync {
    /// Keeps a dead letter; parking the same id again replaces it.
    async fn park(&self, letter: &DeadLetter) -> Result<(), StoreError>;
    /// Up to `limit` parked dead letters that pass `filter`, oldest first.
    async fn list(
        &self,
        filter: &DeadLetterFilter,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError>;
    /// The parked dead letter with this id.
    async fn get(&self, id: Uuid) -> Result<Option<DeadLetter>, StoreError>;
    /// Removes a parked dead letter; whether it was there.
    async fn remove(&self, id: Uuid) -> Result<bool, StoreError>;

    /// Statistics of the parked dead letters that pass `filter`.
    async fn stats(&self, filter: &DeadLetterFilter) -> Result<DeadLetterStats, StoreError> {
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
    async fn park(&self, letter: &DeadLetter) -> Result<(), StoreError> {
        self.lock().insert(letter.id, letter.clone());
        Ok(())
    }

    async fn list(
        &self,
        filter: &DeadLetterFilter,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        Ok(self
            .lock()
            .values()
            .filter(|letter| filter.matches(letter))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn get(&self, id: Uuid) -> Result<Option<DeadLetter>, StoreError> {
        Ok(self.lock().get(&id).cloned())
    }

    async fn remove(&self, id: Uuid) -> Result<bool, StoreError> {
        Ok(self.lock().remove(&id).is_some())
    }
}
