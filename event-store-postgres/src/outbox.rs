//! The outbox table: enqueued in the append's transaction, drained by the relay.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use event_bus_core::envelope::EventEnvelope;
use event_store::outbox::{Outbox, OutboxEntry};
use event_store::store::{AppendOutcome, ExpectedVersion, StoreError, StreamId};
use sqlx::types::Json;

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
        Ok(rows
            .into_iter()
            .map(
                |(id, Json(envelope), enqueued_at, attempts, last_error, published_at)| {
                    OutboxEntry {
                        id: id as u64,
                        envelope,
                        enqueued_at,
                        attempts: attempts.max(0) as u32,
                        last_error,
                        published_at,
                    }
                },
            )
            .collect())
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
