//! Where sagas are kept: the [`SagaRepository`] trait and its implementations.

mod memory;
#[cfg(feature = "postgres")]
mod postgres;

use async_trait::async_trait;
use uuid::Uuid;

use crate::error::RepositoryError;
use crate::state::{SagaState, SagaStatus, StepRecord};

pub use memory::MemorySagaRepository;
#[cfg(feature = "postgres")]
pub use postgres::PgSagaRepository;

/// Whether [`SagaRepository::create`] stored a new saga.
#[derive(Clone, Debug, PartialEq)]
pub enum Created {
    /// The saga was stored.
    New(SagaState),
    /// A saga with this id (the same trigger) exists already; here it is.
    Duplicate(SagaState),
}

/// Persistent saga state and step log, with optimistic concurrency.
#[async_trait]
pub trait SagaRepository: Send + Sync + 'static {
    /// Stores a new saga at version 1, or returns the one already stored under its id or
    /// under its saga type and trigger key.
    async fn create(&self, state: &SagaState) -> Result<Created, RepositoryError>;

    /// Writes `state` and appends `records` to the log in one transaction, if the stored
    /// version is still `state.version`; returns the state at its new version.
    async fn update(
        &self,
        state: &SagaState,
        records: &[StepRecord],
    ) -> Result<SagaState, RepositoryError>;

    /// One saga.
    async fn get(&self, id: Uuid) -> Result<Option<SagaState>, RepositoryError>;

    /// Sagas with one of `statuses` (every saga when empty), oldest first.
    async fn list(&self, statuses: &[SagaStatus]) -> Result<Vec<SagaState>, RepositoryError>;

    /// The saga's step log, in the order it was written.
    async fn steps(&self, id: Uuid) -> Result<Vec<StepRecord>, RepositoryError>;
}
