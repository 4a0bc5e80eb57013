//! Retention: events older than the configured days archived or deleted by an explicit job.

use chrono::{DateTime, Duration, Utc};

use super::{EventStore, StoreError};

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
}

/// Expires events older than `ttl_days` (`EVENT_STORE_TTL_DAYS`) when run. Stream versions
/// are kept, so appends after a run still check versions correctly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetentionJob {
    /// Age in days after which events expire.
    pub ttl_days: u32,
    /// Archive or delete.
    pub mode: RetentionMode,
}

impl RetentionJob {
    /// A job expiring events older than `ttl_days` days.
    pub fn new(ttl_days: u32, mode: RetentionMode) -> Self {
        Self { ttl_days, mode }
    }

    /// Runs once against `store`, as of `now`.
    pub async fn run_at(
        &self,
        store: &(impl EventStore + ?Sized),
        now: DateTime<Utc>,
    ) -> Result<RetentionReport, StoreError> {
        let cutoff = now - Duration::days(i64::from(self.ttl_days));
        let expired = store.expire_before(cutoff, self.mode).await?;
        tracing::info!(%cutoff, expired, mode = ?self.mode, "event store retention run");
        Ok(RetentionReport { cutoff, expired })
    }

    /// Runs once against `store`, as of now.
    pub async fn run(
        &self,
        store: &(impl EventStore + ?Sized),
    ) -> Result<RetentionReport, StoreError> {
        self.run_at(store, Utc::now()).await
    }
}
