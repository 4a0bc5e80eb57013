//! Ownership of running sagas: renewing the leases of the sagas this instance drives, and
//! taking over those whose owner released them or died.

use std::collections::HashSet;
use std::time::Duration;

use uuid::Uuid;

use super::{SagaOrchestrator, lock};
use crate::error::RepositoryError;

/// Sagas taken per query when taking over.
const TAKE_OVER_BATCH: usize = 500;

/// Shortest pause between two rounds of renewing or taking over.
const MIN_PERIOD: Duration = Duration::from_millis(50);

impl SagaOrchestrator {
    /// Takes every free or expired saga of a registered type and drives it; returns their ids.
    pub(super) async fn take_over(&self) -> Result<Vec<Uuid>, RepositoryError> {
        let lease = self.lease();
        let types: Vec<String> = self
            .inner
            .definitions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        let mut taken = Vec::new();
        loop {
            let batch = self
                .inner
                .repository
                .acquire(&lease, &types, TAKE_OVER_BATCH)
                .await?;
            for saga in &batch {
                tracing::info!(saga_id = %saga.id, saga_type = %saga.saga_type, "driving a saga no live instance holds");
                self.spawn_drive(saga.id);
                taken.push(saga.id);
            }
            if batch.len() < TAKE_OVER_BATCH {
                return Ok(taken);
            }
        }
    }

    /// Every quarter lease until shutdown, takes over the sagas of instances that died.
    pub(super) async fn sweep(&self) {
        let period = (self.inner.settings.lease / 4).max(MIN_PERIOD);
        loop {
            tokio::select! {
                () = self.inner.shutdown.cancelled() => return,
                () = tokio::time::sleep(period) => {}
            }
            if let Err(error) = self.take_over().await {
                tracing::warn!(%error, "could not look for sagas to take over");
            }
        }
    }

    /// Every third of a lease until shutdown, renews the leases of the sagas being driven; a
    /// driver whose saga was taken over (this instance was too slow) is stopped.
    pub(super) async fn renew_leases(&self) {
        let period = (self.inner.settings.lease / 3).max(MIN_PERIOD);
        let lease = self.lease();
        loop {
            tokio::select! {
                () = self.inner.shutdown.cancelled() => return,
                () = tokio::time::sleep(period) => {}
            }
            let ids: Vec<Uuid> = lock(&self.inner.active).keys().copied().collect();
            let held: HashSet<Uuid> = match self.inner.repository.renew(&ids, &lease).await {
                Ok(held) => held.into_iter().collect(),
                Err(error) => {
                    tracing::warn!(%error, "could not renew saga leases");
                    continue;
                }
            };
            let active = lock(&self.inner.active);
            for id in ids.iter().filter(|id| !held.contains(id)) {
                if let Some(stop) = active.get(id) {
                    tracing::info!(saga_id = %id, "lease lost; another instance drives this saga");
                    stop.cancel();
                }
            }
        }
    }
}
