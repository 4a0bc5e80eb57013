//! [`PgDedupStore`]: idempotency keys in PostgreSQL, shared by every process of a consumer
//! group on any backend.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use event_bus_core::idempotency::{Claim, DedupError, DedupStore};
use sqlx::PgPool;

use crate::schema::Schema;
use crate::store::PgEventStore;

/// Claims between two sweeps of expired keys.
const SWEEP_EVERY: u32 = 1024;

/// Idempotency keys in the `dedup_keys` table of the store's schema: a row per key, claimed
/// (`done = false`) or handled (`done = true`), until `expires_at`. Leases run on the
/// database's clock, so processes whose clocks disagree still agree on who holds a key.
pub struct PgDedupStore {
    pool: PgPool,
    table: String,
    claims_since_sweep: AtomicU32,
}

impl PgEventStore {
    /// The dedup store in the same database and schema.
    pub fn dedup_store(&self) -> PgDedupStore {
        PgDedupStore::new(self.pool.clone(), &self.schema)
    }
}

impl PgDedupStore {
    fn new(pool: PgPool, schema: &Schema) -> Self {
        Self {
            pool,
            table: schema.table("dedup_keys"),
            claims_since_sweep: AtomicU32::new(0),
        }
    }

    async fn sweep_now_and_then(&self) -> Result<(), sqlx::Error> {
        if !self
            .claims_since_sweep
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(SWEEP_EVERY)
        {
            return Ok(());
        }
        sqlx::query(&format!(
            "DELETE FROM {} WHERE expires_at <= now()",
            self.table
        ))
        .execute(&self.pool)
        .await
        .map(drop)
    }
}

fn dedup_error(error: sqlx::Error) -> DedupError {
    DedupError(Box::new(error))
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis())
        .unwrap_or(i64::MAX)
        .max(1)
}

#[async_trait]
impl DedupStore for PgDedupStore {
    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, DedupError> {
        self.sweep_now_and_then().await.map_err(dedup_error)?;
        // Takes the key when it is new or its row expired; otherwise reports what holds it.
        // The row is locked by the upsert, so two claimers cannot both acquire it.
        let state: Option<(bool, bool)> = sqlx::query_as(&format!(
            "WITH taken AS (
                 INSERT INTO {t} AS d (key, done, expires_at)
                 VALUES ($1, false, now() + make_interval(secs => $2::double precision / 1000))
                 ON CONFLICT (key) DO UPDATE SET done = false, expires_at = EXCLUDED.expires_at
                     WHERE d.expires_at <= now()
                 RETURNING true AS acquired, false AS done
             )
             SELECT acquired, done FROM taken
             UNION ALL
             SELECT false, done FROM {t} WHERE key = $1 AND NOT EXISTS (SELECT 1 FROM taken)",
            t = self.table
        ))
        .bind(key)
        .bind(millis(lease))
        .fetch_optional(&self.pool)
        .await
        .map_err(dedup_error)?;
        Ok(match state {
            Some((true, _)) => Claim::Acquired,
            Some((false, true)) => Claim::Done,
            // `None`: another claimer inserted the row after this statement's snapshot.
            Some((false, false)) | None => Claim::InProgress,
        })
    }

    async fn renew(&self, key: &str, lease: Duration) -> Result<(), DedupError> {
        sqlx::query(&format!(
            "UPDATE {} SET expires_at = now() + make_interval(secs => $2::double precision / 1000)
             WHERE key = $1 AND NOT done AND expires_at > now()",
            self.table
        ))
        .bind(key)
        .bind(millis(lease))
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(dedup_error)
    }

    async fn complete(&self, key: &str, ttl: Duration) -> Result<(), DedupError> {
        sqlx::query(&format!(
            "INSERT INTO {} (key, done, expires_at)
             VALUES ($1, true, now() + make_interval(secs => $2::double precision / 1000))
             ON CONFLICT (key) DO UPDATE SET done = true, expires_at = EXCLUDED.expires_at",
            self.table
        ))
        .bind(key)
        .bind(millis(ttl))
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(dedup_error)
    }

    async fn release(&self, key: &str) -> Result<(), DedupError> {
        sqlx::query(&format!(
            "DELETE FROM {} WHERE key = $1 AND NOT done",
            self.table
        ))
        .bind(key)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(dedup_error)
    }
}
