//! The outbox table: enqueued in the append's transaction, drained by relays. A relay claims
//! rows (`claimed_by`, `claimed_until`) in a short transaction; claims are taken one relay at a
//! time under an advisory lock, so a claim sees every earlier one and no two relays take rows
//! of one aggregate.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use event_bus_core::envelope::EventEnvelope;
use event_store::outbox::{Outbox, OutboxEntry};
use event_store::store::{AppendOutcome, ExpectedVersion, StoreError, StreamId};
use sqlx::types::Json;
use uuid::Uuid;

use crate::error::pg;
use crate::store::PgEventStore;

type Row = (
    i64,
    Json<EventEnvelope>,
    DateTime<Utc>,
    i32,
    Option<String>,
    Option<DateTime<Utc>>,
);

#[async_trait]
impl Outbox for PgEventStore {
    async fn append_and_enqueue(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<EventEnvelope>,
    ) -> Result<AppendOutcome, StoreError> {
        let mut tx = self.pool.begin().await.map_err(pg)?;
        let outcome = self.append_in(&mut tx, stream, expected, events).await?;
        let positions: Vec<i64> = outcome.events.iter().map(|e| e.position as i64).collect();
        let bodies: Vec<serde_json::Value> = outcome
            .events
            .iter()
            .map(|e| serde_json::to_value(&e.envelope))
            .collect::<Result<_, _>>()?;
        sqlx::query(&format!(
            "INSERT INTO {} (position, envelope)
             SELECT * FROM UNNEST($1::int8[], $2::jsonb[]) AS e(position, envelope) ORDER BY 1",
            self.schema.table("outbox")
        ))
        .bind(&positions)
        .bind(&bodies)
        .execute(&mut *tx)
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        Ok(outcome)
    }

    async fn pending(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT id, envelope, enqueued_at, attempts, last_error, published_at FROM {}
             WHERE published_at IS NULL ORDER BY id LIMIT $1",
            self.schema.table("outbox")
        ))
        .bind(limit.min(i64::MAX as usize) as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(pg)?;
        Ok(rows.into_iter().map(entry).collect())
    }

    async fn claim(
        &self,
        relay: Uuid,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let table = self.schema.table("outbox");
        let mut tx = self.pool.begin().await.map_err(pg)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(self.schema.lock_key() ^ 2)
            .execute(&mut *tx)
            .await
            .map_err(pg)?;
        let mut rows: Vec<Row> = sqlx::query_as(&format!(
            "WITH held AS (
                 SELECT DISTINCT envelope->>'aggregatetype' AS aggregate_type,
                        envelope->>'subject' AS aggregate_id
                 FROM {table}
                 WHERE published_at IS NULL AND claimed_by <> $1 AND claimed_until > now()
             ), chosen AS (
                 SELECT o.id FROM {table} o
                 WHERE o.published_at IS NULL
                   AND NOT EXISTS (
                       SELECT 1 FROM held
                       WHERE held.aggregate_type = o.envelope->>'aggregatetype'
                         AND held.aggregate_id = o.envelope->>'subject')
                 ORDER BY o.id LIMIT $2
                 FOR UPDATE SKIP LOCKED
             )
             UPDATE {table} o
             SET claimed_by = $1, claimed_until = now() + make_interval(secs => $3)
             FROM chosen WHERE o.id = chosen.id
             RETURNING o.id, o.envelope, o.enqueued_at, o.attempts, o.last_error, o.published_at"
        ))
        .bind(relay)
        .bind(limit.min(i64::MAX as usize) as i64)
        .bind(lease.as_secs_f64())
        .fetch_all(&mut *tx)
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        rows.sort_by_key(|row| row.0);
        Ok(rows.into_iter().map(entry).collect())
    }

    async fn release(&self, relay: Uuid, ids: &[u64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = ids.iter().map(|&id| id as i64).collect();
        sqlx::query(&format!(
            "UPDATE {} SET claimed_by = NULL, claimed_until = NULL
             WHERE id = ANY($2) AND claimed_by = $1 AND published_at IS NULL",
            self.schema.table("outbox")
        ))
        .bind(relay)
        .bind(&ids)
        .execute(&self.pool)
        .await
        .map_err(pg)?;
        Ok(())
    }

    async fn mark_published(&self, ids: &[u64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = ids.iter().map(|&id| id as i64).collect();
        sqlx::query(&format!(
            "UPDATE {} SET published_at = now() WHERE id = ANY($1) AND published_at IS NULL",
            self.schema.table("outbox")
        ))
        .bind(&ids)
        .execute(&self.pool)
        .await
        .map_err(pg)?;
        Ok(())
    }

    async fn record_failure(&self, id: u64, error: &str) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "UPDATE {} SET attempts = attempts + 1, last_error = $2 WHERE id = $1",
            self.schema.table("outbox")
        ))
        .bind(id as i64)
        .bind(error)
        .execute(&self.pool)
        .await
        .map_err(pg)?;
        Ok(())
    }
}

fn entry(
    (id, Json(envelope), enqueued_at, attempts, last_error, published_at): Row,
) -> OutboxEntry {
    OutboxEntry {
        id: id as u64,
        envelope,
        enqueued_at,
        attempts: attempts.max(0) as u32,
        last_error,
        published_at,
    }
}
