//! Retention: events older than the configured days archived or deleted by an explicit job,
//! and the snapshots and parked dead letters of the same age deleted with them.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use event_bus_core::dead_letter::ParkedStore;

use super::{EventStore, StoreError};
use crate::StoreSettings;

/// What happens to expired events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetentionMode {
    /// Moved to the archive, out of reads.
    Archive,
    /// Deleted for good.
    Delete,
}

/// What a retention run did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetentionReport {
    /// Events that happened before this time were expired.
    pub cutoff: DateTime<Utc>,
    /// Events archived or deleted.
    pub expired: u64,
    /// Snapshots taken before the cutoff, deleted.
    pub snapshots_expired: u64,
    /// Parked dead letters received before the cutoff, deleted.
    pub parked_expired: u64,
}

/// Expires what is older than `ttl_days` (`EVENT_STORE_TTL_DAYS`) when run: events (archived or
/// deleted, `EVENT_STORE_RETENTION_MODE`), snapshots, and the parked dead letters of
/// [`with_parked`](Self::with_parked). Stream versions are kept, so appends after a run still
/// check versions correctly.
#[derive(Clone)]
pub struct RetentionJob {
    /// Age in days after which events expire.
    pub ttl_days: u32,
    /// Archive or delete.
    pub mode: RetentionMode,
    parked: Option<Arc<dyn ParkedStore>>,
}

impl std::fmt::Debug for RetentionJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetentionJob")
            .field("ttl_days", &self.ttl_days)
            .field("mode", &self.mode)
            .field("parked", &self.parked.is_some())
            .finish()
    }
}

impl RetentionJob {
    /// A job expiring events older than `ttl_days` days.
    pub fn new(ttl_days: u32, mode: RetentionMode) -> Self {
        Self {
            ttl_days,
            mode,
            parked: None,
        }
    }

    /// The job the settings ask for; `None` when `EVENT_STORE_TTL_DAYS` is unset (keep all).
    pub fn from_settings(settings: &StoreSettings) -> Option<Self> {
        settings
            .ttl_days
            .map(|days| Self::new(days, settings.retention_mode))
    }

    /// Also deletes the parked dead letters of `parked` received before the cutoff.
    #[must_use]
    pub fn with_parked(mut self, parked: Arc<dyn ParkedStore>) -> Self {
        self.parked = Some(parked);
        self
    }

    /// Runs once against `store`, as of `now`.
    pub async fn run_at(
        &self,
        store: &(impl EventStore + ?Sized),
        now: DateTime<Utc>,
    ) -> Result<RetentionReport, StoreError> {
        let cutoff = now - Duration::days(i64::from(self.ttl_days));
        let expired = store.expire_before(cutoff, self.mode).await?;
        let snapshots_expired = store.expire_snapshots_before(cutoff).await?;
        let parked_expired = match &self.parked {
            Some(parked) => parked
                .expire_before(cutoff)
                .await
                .map_err(|error| StoreError::backend(error.backend, error.source))?,
            None => 0,
        };
        tracing::info!(%cutoff, expired, snapshots_expired, parked_expired, mode = ?self.mode, "event store retention run");
        Ok(RetentionReport {
            cutoff,
            expired,
            snapshots_expired,
            parked_expired,
        })
    }

    /// Runs once against `store`, as of now.
    pub async fn run(
        &self,
        store: &(impl EventStore + ?Sized),
    ) -> Result<RetentionReport, StoreError> {
        self.run_at(store, Utc::now()).await
    }
}
