//! Errors of steps, repositories and the orchestrator.

use event_bus_core::{BoxError, BusError};
use uuid::Uuid;

/// Why a step's action or compensation did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// May succeed on a later attempt; retried with backoff up to the attempt limit.
    #[error("transient failure: {0}")]
    Transient(BoxError),
    /// Will never succeed; the saga compensates at once.
    #[error("permanent failure: {0}")]
    Permanent(BoxError),
}

impl StepError {
    /// A failure that may go away on retry.
    pub fn transient(error: impl Into<BoxError>) -> Self {
        Self::Transient(error.into())
    }

    /// A failure that no retry can fix.
    pub fn permanent(error: impl Into<BoxError>) -> Self {
        Self::Permanent(error.into())
    }

    /// Whether a retry may help.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

impl From<BusError> for StepError {
    fn from(error: BusError) -> Self {
        Self::transient(error)
    }
}

/// Why the saga repository could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// The saga was changed by someone else since it was read (optimistic concurrency).
    #[error("saga {id} was changed concurrently: expected version {expected}")]
    Conflict {
        /// The saga.
        id: Uuid,
        /// The version the writer read.
        expected: i64,
    },
    /// The saga is no longer leased to this owner: another instance took it over.
    #[error("saga {id} is no longer leased to {owner}")]
    LeaseLost {
        /// The saga.
        id: Uuid,
        /// The instance that held the lease.
        owner: Uuid,
    },
    /// No saga has this id.
    #[error("no saga with id {0}")]
    NotFound(Uuid),
    /// A stored value could not be read back.
    #[error("corrupt saga record: {0}")]
    Corrupt(String),
    /// A schema name that is not a plain SQL identifier.
    #[error(
        "invalid schema name `{0}`: use letters, digits and underscores, not starting with a digit"
    )]
    InvalidSchema(String),
    /// The database reported an error.
    #[error("saga database: {0}")]
    Database(BoxError),
}

/// What can go wrong orchestrating a saga.
#[derive(Debug, thiserror::Error)]
pub enum SagaError {
    /// No saga definition is registered under this name.
    #[error("no saga definition named `{0}`")]
    UnknownSaga(String),
    /// The definition cannot run.
    #[error(transparent)]
    Definition(#[from] crate::definition::DefinitionError),
    /// The repository failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// A saga did not reach the awaited state in time.
    #[error("saga {id} did not reach the awaited state within {timeout:?}; last status: {last}")]
    WaitTimeout {
        /// The saga.
        id: Uuid,
        /// How long it waited.
        timeout: std::time::Duration,
        /// Its status when the wait gave up.
        last: String,
    },
}
