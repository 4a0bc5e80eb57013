//! [`PgParkedStore`]: parked dead letters in PostgreSQL.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use event_bus_core::Message;
use event_bus_core::dead_letter::{DeadLetter, DeadLetterFilter, ParkedStore, ParkedStoreError};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use crate::schema::Schema;
use crate::store::PgEventStore;

/// Parked dead letters in the `parked_dead_letters` table of the store's schema.
#[derive(Clone)]
pub struct PgParkedStore {
    pool: PgPool,
    schema: Schema,
}

impl PgEventStore {
    /// The parked dead-letter store in the same database and schema.
    pub fn parked_store(&self) -> PgParkedStore {
        PgParkedStore {
            pool: self.pool.clone(),
            schema: self.schema.clone(),
        }
    }
}

const COLUMNS: &str = "id, received_at, event_id, event_type, reason, error, attempts, redrives, \
     original_topic, subscription, first_failure_at, last_failure_at, message_key, headers, payload";

fn decode(row: &PgRow) -> Result<DeadLetter, sqlx::Error> {
    let Json(headers): Json<BTreeMap<String, String>> = row.try_get("headers")?;
    let payload: Vec<u8> = row.try_get("payload")?;
    Ok(DeadLetter {
        id: row.try_get("id")?,
        received_at: row.try_get("received_at")?,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        reason: row.try_get("reason")?,
        error: row.try_get("error")?,
        attempts: row.try_get::<i32, _>("attempts")?.max(0) as u32,
        redrives: row.try_get::<i32, _>("redrives")?.max(0) as u32,
        original_topic: row.try_get("original_topic")?,
        subscription: row.try_get("subscription")?,
        first_failure_at: row.try_get("first_failure_at")?,
        last_failure_at: row.try_get("last_failure_at")?,
        message: Message {
            key: row.try_get("message_key")?,
            headers,
            payload: payload.into(),
        },
    })
}

fn pg(error: sqlx::Error) -> ParkedStoreError {
    ParkedStoreError::backend("postgres", error)
}

#[async_trait]
impl ParkedStore for PgParkedStore {
    async fn park(&self, letter: &DeadLetter) -> Result<(), ParkedStoreError> {
        sqlx::query(&format!(
            "INSERT INTO {} ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
             ON CONFLICT (id) DO UPDATE SET redrives = EXCLUDED.redrives, error = EXCLUDED.error,
                 last_failure_at = EXCLUDED.last_failure_at",
            self.schema.table("parked_dead_letters")
        ))
        .bind(letter.id)
        .bind(letter.received_at)
        .bind(letter.event_id.as_deref())
        .bind(&letter.event_type)
        .bind(&letter.reason)
        .bind(&letter.error)
        .bind(letter.attempts.min(i32::MAX as u32) as i32)
        .bind(letter.redrives.min(i32::MAX as u32) as i32)
        .bind(&letter.original_topic)
        .bind(&letter.subscription)
        .bind(letter.first_failure_at)
        .bind(letter.last_failure_at)
        .bind(&letter.message.key)
        .bind(Json(&letter.message.headers))
        .bind(letter.message.payload.as_ref())
        .execute(&self.pool)
        .await
        .map_err(pg)?;
        Ok(())
    }

    async fn list(
        &self,
        filter: &DeadLetterFilter,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, ParkedStoreError> {
        let mut query = QueryBuilder::<Postgres>::new(format!(
            "SELECT {COLUMNS} FROM {} WHERE true",
            self.schema.table("parked_dead_letters")
        ));
        if let Some(reason) = &filter.reason {
            query.push(" AND reason = ").push_bind(reason.clone());
        }
        if let Some(topic) = &filter.original_topic {
            query
                .push(" AND original_topic = ")
                .push_bind(topic.clone());
        }
        if let Some(event_type) = &filter.event_type {
            query
                .push(" AND event_type = ")
                .push_bind(event_type.clone());
        }
        query
            .push(" ORDER BY id LIMIT ")
            .push_bind(limit.min(i64::MAX as usize) as i64);
        let rows = query.build().fetch_all(&self.pool).await.map_err(pg)?;
        rows.iter()
            .map(decode)
            .collect::<Result<_, _>>()
            .map_err(pg)
    }

    async fn get(&self, id: Uuid) -> Result<Option<DeadLetter>, ParkedStoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM {} WHERE id = $1",
            self.schema.table("parked_dead_letters")
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(pg)?;
        row.as_ref().map(decode).transpose().map_err(pg)
    }

    async fn remove(&self, id: Uuid) -> Result<bool, ParkedStoreError> {
        let done = sqlx::query(&format!(
            "DELETE FROM {} WHERE id = $1",
            self.schema.table("parked_dead_letters")
        ))
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(pg)?;
        Ok(done.rows_affected() > 0)
    }

    async fn expire_before(&self, cutoff: DateTime<Utc>) -> Result<u64, ParkedStoreError> {
        let done = sqlx::query(&format!(
            "DELETE FROM {} WHERE received_at < $1",
            self.schema.table("parked_dead_letters")
        ))
        .bind(cutoff)
        .execute(&self.pool)
        .await
        .map_err(pg)?;
        Ok(done.rows_affected())
    }
}
