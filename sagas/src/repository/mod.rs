//! Where sagas are kept: the [`SagaRepository`] trait and its implementations.

mod clock;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;

use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use crate::error::RepositoryError;
use crate::state::{SagaState, SagaStatus, StepRecord};

pub use clock::{Clock, ManualClock, SystemClock};
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

/// An orchestrator instance's hold on the sagas it drives: each write or renewal extends it to
/// `duration` from the repository's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The instance.
    pub owner: Uuid,
    /// How long the hold lasts without a write or renewal.
    pub duration: Duration,
}

/// Persistent saga state and step log, with optimistic concurrency and ownership by lease: a
/// running saga is driven by the instance holding its lease, and taken over by another only
/// once the lease has expired or was released.
#[async_trait]
pub trait SagaRepository: Send + Sync + 'static {
    /// Stores a new saga at version 1, leased to `lease.owner`, or returns the one already
    /// stored under its id or under its saga type and trigger key.
    async fn create(&self, state: &SagaState, lease: &Lease) -> Result<Created, RepositoryError>;

    /// Writes `state` and appends `records` to the log in one transaction, if the stored
    /// version is still `state.version` ([`RepositoryError::Conflict`] otherwise) and the saga
    /// is leased to `lease.owner` ([`RepositoryError::LeaseLost`] otherwise); renews the
    /// lease, or clears it when `state` is finished. Returns the state at its new version.
    async fn update(
        &self,
        state: &SagaState,
        records: &[StepRecord],
        lease: &Lease,
    ) -> Result<SagaState, RepositoryError>;

    /// Takes up to `limit` running or compensating sagas of `saga_types` whose lease is free
    /// or expired, oldest first: each is leased to `lease.owner` at a new version.
    async fn acquire(
        &self,
        lease: &Lease,
        saga_types: &[String],
        limit: usize,
    ) -> Result<Vec<SagaState>, RepositoryError>;

    /// Extends the lease of those of `ids` still leased to `lease.owner`; returns them.
    async fn renew(&self, ids: &[Uuid], lease: &Lease) -> Result<Vec<Uuid>, RepositoryError>;

    /// Gives up `owner`'s lease on the saga, so another instance may take it over at once.
    async fn release(&self, id: Uuid, owner: Uuid) -> Result<(), RepositoryError>;

    /// One saga.
    async fn get(&self, id: Uuid) -> Result<Option<SagaState>, RepositoryError>;

    /// Sagas with one of `statuses` (every saga when empty), oldest first.
    async fn list(&self, statuses: &[SagaStatus]) -> Result<Vec<SagaState>, RepositoryError>;

    /// The saga's step log, in the order it was written.
    async fn steps(&self, id: Uuid) -> Result<Vec<StepRecord>, RepositoryError>;
}
