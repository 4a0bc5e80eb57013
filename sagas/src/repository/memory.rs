//! The in-process repository: state lives and dies with the process.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use uuid::Uuid;

use super::{Created, SagaRepository};
use crate::error::RepositoryError;
use crate::state::{SagaState, SagaStatus, StepRecord};

/// Keeps sagas in memory; for tests, demos and single-process use without durability.
#[derive(Default)]
pub struct MemorySagaRepository {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    sagas: HashMap<Uuid, SagaState>,
    triggers: HashMap<(String, String), Uuid>,
    logs: HashMap<Uuid, Vec<StepRecord>>,
}

impl MemorySagaRepository {
    /// An empty repository.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl SagaRepository for MemorySagaRepository {
    async fn create(&self, state: &SagaState) -> Result<Created, RepositoryError> {
        let mut inner = self.lock();
        let trigger = (state.saga_type.clone(), state.trigger_key.clone());
        let existing = inner
            .triggers
            .get(&trigger)
            .copied()
            .or_else(|| inner.sagas.contains_key(&state.id).then_some(state.id));
        if let Some(id) = existing {
            return Ok(Created::Duplicate(inner.sagas[&id].clone()));
        }
        let stored = SagaState {
            version: 1,
            ..state.clone()
        };
        inner.triggers.insert(trigger, state.id);
        inner.sagas.insert(state.id, stored.clone());
        inner.logs.insert(state.id, Vec::new());
        Ok(Created::New(stored))
    }

    async fn update(
        &self,
        state: &SagaState,
        records: &[StepRecord],
    ) -> Result<SagaState, RepositoryError> {
        let mut inner = self.lock();
        let stored = inner
            .sagas
            .get_mut(&state.id)
            .ok_or(RepositoryError::NotFound(state.id))?;
        if stored.version != state.version {
            return Err(RepositoryError::Conflict {
                id: state.id,
                expected: state.version,
            });
        }
        *stored = SagaState {
            version: state.version + 1,
            ..state.clone()
        };
        let updated = stored.clone();
        inner
            .logs
            .entry(state.id)
            .or_default()
            .extend_from_slice(records);
        Ok(updated)
    }

    async fn get(&self, id: Uuid) -> Result<Option<SagaState>, RepositoryError> {
        Ok(self.lock().sagas.get(&id).cloned())
    }

    async fn list(&self, statuses: &[SagaStatus]) -> Result<Vec<SagaState>, RepositoryError> {
        let mut sagas: Vec<SagaState> = self
            .lock()
            .sagas
            .values()
            .filter(|s| statuses.is_empty() || statuses.contains(&s.status))
            .cloned()
            .collect();
        sagas.sort_by_key(|s| (s.created_at, s.id));
        Ok(sagas)
    }

    async fn steps(&self, id: Uuid) -> Result<Vec<StepRecord>, RepositoryError> {
        Ok(self.lock().logs.get(&id).cloned().unwrap_or_default())
    }
}
