//! sqlx errors as event-store errors.

use event_store::store::StoreError;

pub(crate) fn pg(error: sqlx::Error) -> StoreError {
    StoreError::backend("postgres", error)
}

/// Whether the error is a unique-constraint violation.
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505"))
}
