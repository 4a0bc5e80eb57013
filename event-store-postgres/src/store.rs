//! [`PgEventStore`]: the event store in PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use event_bus_core::envelope::EventEnvelope;
use event_store::StoreSettings;
use event_store::store::{
    AppendOutcome, EventFilter, EventStore, ExpectedVersion, RecordedEvent, RetentionMode,
    Snapshot, StoreError, StoreStats, StreamId, Upcasters, stamp,
};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{Connection, PgPool, Postgres, QueryBuilder, Row, Transaction};

use crate::error::{is_unique_violation, pg};
use crate::schema::Schema;

/// The event store in PostgreSQL; clones share the connection pool.
#[derive(Clone)]
pub struct PgEventStore {
    pub(crate) pool: PgPool,
    pub(crate) schema: Schema,
    upcasters: Upcasters,
    snapshot_interval: u64,
}

impl PgEventStore {
    /// Connects to `url` and creates the tables in `schema` if missing.
    pub async fn connect(url: &str, schema: &str) -> Result<Self, StoreError> {
        let schema = Schema::new(schema)?;
        let options: PgConnectOptions = url.parse().map_err(pg)?;
        // One direct connection first: its error names the cause (refused, unknown database,
        // authentication) where the pool would only report a timeout.
        PgConnection::connect_with(&options)
            .await
            .map_err(pg)?
            .close()
            .await
            .map_err(pg)?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(pg)?;
        Self::from_pool(pool, schema).await
    }

    /// Connects to `DATABASE_URL` in `EVENT_STORE_SCHEMA` with the configured snapshot
    /// interval.
    pub async fn from_settings(settings: &StoreSettings) -> Result<Self, StoreError> {
        Ok(Self::connect(&settings.database_url, &settings.schema)
            .await?
            .with_snapshot_interval(settings.snapshot_interval))
    }

    /// Uses an existing pool, creating the tables in `schema` if missing.
    pub async fn from_pool(pool: PgPool, schema: Schema) -> Result<Self, StoreError> {
        schema.migrate(&pool).await?;
        Ok(Self {
            pool,
            schema,
            upcasters: Upcasters::new(),
            snapshot_interval: 100,
        })
    }

    /// Saves a snapshot after this many folded events (0: never).
    #[must_use]
    pub fn with_snapshot_interval(mut self, interval: u64) -> Self {
        self.snapshot_interval = interval;
        self
    }

    /// Upcasts events on read with `upcasters`.
    #[must_use]
    pub fn with_upcasters(mut self, upcasters: Upcasters) -> Self {
        self.upcasters = upcasters;
        self
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The schema holding the tables.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    fn t(&self, table: &str) -> String {
        self.schema.table(table)
    }

    /// The append inside a transaction the caller commits: lock, check, insert, bump.
    pub(crate) async fn append_in(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        stream: &StreamId,
        expected: ExpectedVersion,
        mut events: Vec<EventEnvelope>,
    ) -> Result<AppendOutcome, StoreError> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(self.schema.lock_key())
            .execute(&mut **tx)
            .await
            .map_err(pg)?;
        let current: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT version FROM {} WHERE aggregate_type = $1 AND aggregate_id = $2 FOR UPDATE",
            self.t("streams")
        ))
        .bind(&stream.aggregate_type)
        .bind(&stream.aggregate_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(pg)?;
        let current = u64::try_from(current.unwrap_or(0)).unwrap_or(0);
        let conflict = || StoreError::Concurrency {
            stream: stream.clone(),
            expected,
            actual: current,
        };
        if !expected.matches(current) {
            return Err(conflict());
        }
        if events.is_empty() {
            return Ok(AppendOutcome {
                version: current,
                events: Vec::new(),
            });
        }
        stamp(stream, current, &mut events);
        let version = current + events.len() as u64;
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        let versions: Vec<i64> = events.iter().map(|e| e.aggregate_version as i64).collect();
        let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        let times: Vec<DateTime<Utc>> = events.iter().map(|e| e.timestamp).collect();
        let bodies: Vec<serde_json::Value> = events
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO {} (event_id, aggregate_type, aggregate_id, version, event_type, occurred_at, envelope)
             SELECT e.id, $2, $3, e.version, e.event_type, e.occurred_at, e.envelope
             FROM UNNEST($1::text[], $4::int8[], $5::text[], $6::timestamptz[], $7::jsonb[])
                  AS e(id, version, event_type, occurred_at, envelope)
             ORDER BY e.version
             RETURNING position, version, recorded_at",
            self.t("events")
        ))
        .bind(&ids)
        .bind(&stream.aggregate_type)
        .bind(&stream.aggregate_id)
        .bind(&versions)
        .bind(&types)
        .bind(&times)
        .bind(&bodies)
        .fetch_all(&mut **tx)
        .await
        .map_err(|error| {
            if is_unique_violation(&error) {
                conflict()
            } else {
                pg(error)
            }
        })?;
        sqlx::query(&format!(
            "INSERT INTO {} (aggregate_type, aggregate_id, version) VALUES ($1, $2, $3)
             ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE SET version = EXCLUDED.version",
            self.t("streams")
        ))
        .bind(&stream.aggregate_type)
        .bind(&stream.aggregate_id)
        .bind(version as i64)
        .execute(&mut **tx)
        .await
        .map_err(pg)?;
        let mut rows: Vec<(i64, i64, DateTime<Utc>)> = inserted
            .iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(pg)?;
        rows.sort_by_key(|(_, version, _)| *version);
        let recorded = rows
            .into_iter()
            .zip(events)
            .map(|((position, _, recorded_at), envelope)| RecordedEvent {
                position: position as u64,
                recorded_at,
                envelope,
            })
            .collect();
        Ok(AppendOutcome {
            version,
            events: recorded,
        })
    }

    fn decode(&self, rows: Vec<PgRow>) -> Result<Vec<RecordedEvent>, StoreError> {
        rows.into_iter()
            .map(|row| {
                let position: i64 = row.try_get("position").map_err(pg)?;
                let recorded_at = row.try_get("recorded_at").map_err(pg)?;
                let Json(envelope): Json<EventEnvelope> = row.try_get("envelope").map_err(pg)?;
                let envelope = if self.upcasters.is_empty() {
                    envelope
                } else {
                    self.upcasters.upcast(envelope)?
                };
                Ok(RecordedEvent {
                    position: position as u64,
                    recorded_at,
                    envelope,
                })
            })
            .collect()
    }
}

#[async_trait]
impl EventStore for PgEventStore {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn snapshot_interval(&self) -> u64 {
        self.snapshot_interval
    }

    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<EventEnvelope>,
    ) -> Result<AppendOutcome, StoreError> {
        let mut tx = self.pool.begin().await.map_err(pg)?;
        let outcome = self.append_in(&mut tx, stream, expected, events).await?;
        tx.commit().await.map_err(pg)?;
        Ok(outcome)
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: Option<usize>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT position, recorded_at, envelope FROM {}
             WHERE aggregate_type = $1 AND aggregate_id = $2 AND version >= $3
             ORDER BY version LIMIT $4",
            self.t("events")
        ))
        .bind(&stream.aggregate_type)
        .bind(&stream.aggregate_id)
        .bind(from_version as i64)
        .bind(limit.map(|l| l.min(i64::MAX as usize) as i64))
        .fetch_all(&self.pool)
        .await
        .map_err(pg)?;
        self.decode(rows)
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError> {
        let version: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT version FROM {} WHERE aggregate_type = $1 AND aggregate_id = $2",
            self.t("streams")
        ))
        .bind(&stream.aggregate_type)
        .bind(&stream.aggregate_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(pg)?;
        Ok(version.unwrap_or(0) as u64)
    }

    async fn read_all(
        &self,
        filter: &EventFilter,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut query = QueryBuilder::<Postgres>::new(format!(
            "SELECT position, recorded_at, envelope FROM {} WHERE position > ",
            self.t("events")
        ));
        query.push_bind(after_position as i64);
        if let Some(from) = filter.from {
            query.push(" AND occurred_at >= ").push_bind(from);
        }
        if let Some(to) = filter.to {
            query.push(" AND occurred_at < ").push_bind(to);
        }
        if !filter.event_types.is_empty() {
            query
                .push(" AND event_type = ANY(")
                .push_bind(filter.event_types.clone())
                .push(")");
        }
        if let Some(aggregate_type) = &filter.aggregate_type {
            query
                .push(" AND aggregate_type = ")
                .push_bind(aggregate_type.clone());
        }
        if let Some(aggregate_id) = &filter.aggregate_id {
            query
                .push(" AND aggregate_id = ")
                .push_bind(aggregate_id.clone());
        }
        query
            .push(" ORDER BY position LIMIT ")
            .push_bind(limit.min(i64::MAX as usize) as i64);
        let rows = query.build().fetch_all(&self.pool).await.map_err(pg)?;
        self.decode(rows)
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO {t} (aggregate_type, aggregate_id, version, state, taken_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE
             SET version = EXCLUDED.version, state = EXCLUDED.state, taken_at = EXCLUDED.taken_at
             WHERE {t}.version <= EXCLUDED.version",
            t = self.t("snapshots")
        ))
        .bind(&snapshot.stream.aggregate_type)
        .bind(&snapshot.stream.aggregate_id)
        .bind(snapshot.version as i64)
        .bind(&snapshot.state)
        .bind(snapshot.taken_at)
        .execute(&self.pool)
        .await
        .map_err(pg)?;
        Ok(())
    }

    async fn latest_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        let row: Option<(i64, serde_json::Value, DateTime<Utc>)> = sqlx::query_as(&format!(
            "SELECT version, state, taken_at FROM {} WHERE aggregate_type = $1 AND aggregate_id = $2",
            self.t("snapshots")
        ))
        .bind(&stream.aggregate_type)
        .bind(&stream.aggregate_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(pg)?;
        Ok(row.map(|(version, state, taken_at)| Snapshot {
            stream: stream.clone(),
            version: version as u64,
            state,
            taken_at,
        }))
    }

    async fn expire_before(
        &self,
        cutoff: DateTime<Utc>,
        mode: RetentionMode,
    ) -> Result<u64, StoreError> {
        let sql = match mode {
            RetentionMode::Archive => format!(
                "WITH moved AS (DELETE FROM {events} WHERE occurred_at < $1 RETURNING *)
                 INSERT INTO {archive} (position, event_id, aggregate_type, aggregate_id, version,
                                        event_type, occurred_at, recorded_at, envelope)
                 SELECT position, event_id, aggregate_type, aggregate_id, version,
                        event_type, occurred_at, recorded_at, envelope FROM moved",
                events = self.t("events"),
                archive = self.t("events_archive")
            ),
            RetentionMode::Delete => {
                format!("DELETE FROM {} WHERE occurred_at < $1", self.t("events"))
            }
        };
        let done = sqlx::query(&sql)
            .bind(cutoff)
            .execute(&self.pool)
            .await
            .map_err(pg)?;
        Ok(done.rows_affected())
    }

    async fn expire_snapshots_before(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query(&format!(
            "DELETE FROM {} WHERE taken_at < $1",
            self.t("snapshots")
        ))
        .bind(cutoff)
        .execute(&self.pool)
        .await
        .map_err(pg)?;
        Ok(done.rows_affected())
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT
                (SELECT count(*) FROM {events}) AS events,
                (SELECT count(*) FROM {streams}) AS streams,
                (SELECT count(*) FROM {snapshots}) AS snapshots,
                (SELECT count(*) FROM {archive}) AS archived,
                GREATEST((SELECT max(position) FROM {events}), (SELECT max(position) FROM {archive}), 0) AS last_position,
                (SELECT min(occurred_at) FROM {events}) AS oldest,
                (SELECT max(occurred_at) FROM {events}) AS newest,
                (SELECT count(*) FROM {outbox} WHERE published_at IS NULL) AS outbox_pending",
            events = self.t("events"),
            streams = self.t("streams"),
            snapshots = self.t("snapshots"),
            archive = self.t("events_archive"),
            outbox = self.t("outbox"),
        ))
        .fetch_one(&self.pool)
        .await
        .map_err(pg)?;
        let count = |name: &str| -> Result<u64, StoreError> {
            Ok(row.try_get::<i64, _>(name).map_err(pg)? as u64)
        };
        let by_type: Vec<(String, i64)> = sqlx::query_as(&format!(
            "SELECT event_type, count(*) FROM {} GROUP BY event_type",
            self.t("events")
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(pg)?;
        Ok(StoreStats {
            events: count("events")?,
            streams: count("streams")?,
            snapshots: count("snapshots")?,
            archived: count("archived")?,
            last_position: count("last_position")?,
            oldest: row.try_get("oldest").map_err(pg)?,
            newest: row.try_get("newest").map_err(pg)?,
            by_type: by_type
                .into_iter()
                .map(|(event_type, n)| (event_type, n as u64))
                .collect(),
            outbox_pending: count("outbox_pending")?,
        })
    }
}
