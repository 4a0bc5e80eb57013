//! The in-process repository: state lives and dies with the process. Leases are measured by a
//! [`Clock`], which a test may move by hand.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Clock, Created, Lease, SagaRepository, SystemClock};
use crate::error::RepositoryError;
use crate::state::{SagaState, SagaStatus, StepRecord};

/// Keeps sagas in memory; for tests, demos and single-process use without durability.
pub struct MemorySagaRepository {
    inner: Mutex<Inner>,
    clock: Arc<dyn Clock>,
}

impl Default for MemorySagaRepository {
    fn default() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }
}

#[derive(Default)]
struct Inner {
    sagas: HashMap<Uuid, SagaState>,
    triggers: HashMap<(String, String), Uuid>,
    logs: HashMap<Uuid, Vec<StepRecord>>,
}

impl MemorySagaRepository {
    /// An empty repository on the system clock.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty repository measuring leases by `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            inner: Mutex::default(),
            clock,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn expiry(&self, lease: &Lease) -> DateTime<Utc> {
        let duration = chrono::Duration::from_std(lease.duration).unwrap_or(chrono::Duration::MAX);
        let now = self.clock.now();
        now.checked_add_signed(duration)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

#[async_trait]
impl SagaRepository for MemorySagaRepository {
    async fn create(&self, state: &SagaState, lease: &Lease) -> Result<Created, RepositoryError> {
        let expires = self.expiry(lease);
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
            owner: Some(lease.owner),
            lease_expires_at: Some(expires),
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
        lease: &Lease,
    ) -> Result<SagaState, RepositoryError> {
        let expires = self.expiry(lease);
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
        if stored.owner != Some(lease.owner) {
            return Err(RepositoryError::LeaseLost {
                id: state.id,
                owner: lease.owner,
            });
        }
        let finished = state.status.is_terminal();
        *stored = SagaState {
            version: state.version + 1,
            owner: (!finished).then_some(lease.owner),
            lease_expires_at: (!finished).then_some(expires),
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

    async fn acquire(
        &self,
        lease: &Lease,
        saga_types: &[String],
        limit: usize,
    ) -> Result<Vec<SagaState>, RepositoryError> {
        let now = self.clock.now();
        let expires = self.expiry(lease);
        let mut inner = self.lock();
        let mut free: Vec<&mut SagaState> = inner
            .sagas
            .values_mut()
            .filter(|s| !s.status.is_terminal() && saga_types.contains(&s.saga_type))
            .filter(|s| s.owner.is_none() || s.lease_expires_at.is_none_or(|at| at <= now))
            .collect();
        free.sort_by_key(|s| (s.created_at, s.id));
        Ok(free
            .into_iter()
            .take(limit)
            .map(|saga| {
                saga.version += 1;
                saga.owner = Some(lease.owner);
                saga.lease_expires_at = Some(expires);
                saga.clone()
            })
            .collect())
    }

    async fn renew(&self, ids: &[Uuid], lease: &Lease) -> Result<Vec<Uuid>, RepositoryError> {
        let expires = self.expiry(lease);
        let mut inner = self.lock();
        let mut held = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(saga) = inner.sagas.get_mut(id)
                && saga.owner == Some(lease.owner)
            {
                saga.lease_expires_at = Some(expires);
                held.push(*id);
            }
        }
        Ok(held)
    }

    async fn release(&self, id: Uuid, owner: Uuid) -> Result<(), RepositoryError> {
        if let Some(saga) = self.lock().sagas.get_mut(&id)
            && saga.owner == Some(owner)
        {
            saga.owner = None;
            saga.lease_expires_at = None;
        }
        Ok(())
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
