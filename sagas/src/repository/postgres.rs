//! The PostgreSQL repository: one row per saga with a version column for optimistic
//! concurrency, an owner and lease expiry (measured by the server's clock, so instances need
//! not agree on the time), a unique (saga type, trigger key) constraint, and an append-only
//! step log. Every method holds at most one pooled connection at a time.

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

use super::{Created, Lease, SagaRepository};
use crate::error::RepositoryError;
use crate::state::{SagaState, SagaStatus, StepOutcome, StepPhase, StepRecord};

/// Keeps sagas in PostgreSQL, in the tables `sagas` and `saga_steps` of one schema.
#[derive(Clone)]
pub struct PgSagaRepository {
    pool: PgPool,
    schema: String,
}

fn db(error: sqlx::Error) -> RepositoryError {
    RepositoryError::Database(Box::new(error))
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63
}

fn index(value: i32, what: &str) -> Result<usize, RepositoryError> {
    usize::try_from(value).map_err(|_| RepositoryError::Corrupt(format!("negative {what}")))
}

fn int(value: usize) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

const SAGA_COLUMNS: &str = "id, saga_type, trigger_key, correlation_id, status, data, \
    completed_steps, failure, deadline, created_at, updated_at, version, owner, lease_expires_at";

/// Connections of a pool opened by [`PgSagaRepository::connect`].
pub const DEFAULT_POOL_SIZE: u32 = 8;

/// The unfinished statuses, as stored.
const UNFINISHED: [&str; 2] = ["running", "compensating"];

/// SQL for "`now()` plus the lease", the lease in seconds as parameter `$n`.
fn lease_end(n: u8) -> String {
    format!("now() + make_interval(secs => ${n})")
}

impl PgSagaRepository {
    /// Connects to `url` with a pool of [`DEFAULT_POOL_SIZE`] connections and creates the
    /// schema and tables when missing.
    pub async fn connect(url: &str, schema: &str) -> Result<Self, RepositoryError> {
        Self::connect_with_pool_size(url, schema, DEFAULT_POOL_SIZE).await
    }

    /// Connects to `url` with a pool of `pool_size` connections (at least 1) and creates the
    /// schema and tables when missing.
    pub async fn connect_with_pool_size(
        url: &str,
        schema: &str,
        pool_size: u32,
    ) -> Result<Self, RepositoryError> {
        if !is_identifier(schema) {
            return Err(RepositoryError::InvalidSchema(schema.to_owned()));
        }
        let pool = PgPoolOptions::new()
            .max_connections(pool_size.max(1))
            .connect(url)
            .await
            .map_err(db)?;
        Self::from_pool(pool, schema).await
    }

    /// Connects to `SAGA_DATABASE_URL`, schema `SAGA_DATABASE_SCHEMA`, with a pool of
    /// `SAGA_DATABASE_POOL_SIZE` connections, as `settings` read them.
    pub async fn from_settings(settings: &crate::SagaSettings) -> Result<Self, RepositoryError> {
        Self::connect_with_pool_size(
            &settings.database_url,
            &settings.database_schema,
            settings.database_pool_size,
        )
        .await
    }

    /// Uses an existing pool; creates the schema and tables when missing.
    pub async fn from_pool(pool: PgPool, schema: &str) -> Result<Self, RepositoryError> {
        if !is_identifier(schema) {
            return Err(RepositoryError::InvalidSchema(schema.to_owned()));
        }
        let repository = Self {
            pool,
            schema: schema.to_owned(),
        };
        repository.migrate().await?;
        Ok(repository)
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn migrate(&self) -> Result<(), RepositoryError> {
        let s = &self.schema;
        let statements = [
            format!(r#"CREATE SCHEMA IF NOT EXISTS "{s}""#),
            format!(
                r#"CREATE TABLE IF NOT EXISTS "{s}".sagas (
                    id uuid PRIMARY KEY,
                    saga_type text NOT NULL,
                    trigger_key text NOT NULL,
                    correlation_id uuid NOT NULL,
                    status text NOT NULL,
                    data jsonb NOT NULL,
                    completed_steps integer NOT NULL,
                    failure text,
                    deadline timestamptz NOT NULL,
                    created_at timestamptz NOT NULL,
                    updated_at timestamptz NOT NULL,
                    version bigint NOT NULL,
                    CONSTRAINT sagas_trigger_unique UNIQUE (saga_type, trigger_key)
                )"#
            ),
            format!(r#"ALTER TABLE "{s}".sagas ADD COLUMN IF NOT EXISTS owner uuid"#),
            format!(
                r#"ALTER TABLE "{s}".sagas ADD COLUMN IF NOT EXISTS lease_expires_at timestamptz"#
            ),
            format!(
                r#"CREATE INDEX IF NOT EXISTS sagas_status ON "{s}".sagas (status, created_at)"#
            ),
            format!(
                r#"CREATE TABLE IF NOT EXISTS "{s}".saga_steps (
                    seq bigserial PRIMARY KEY,
                    saga_id uuid NOT NULL REFERENCES "{s}".sagas (id) ON DELETE CASCADE,
                    step_index integer NOT NULL,
                    step text NOT NULL,
                    phase text NOT NULL,
                    attempt integer NOT NULL,
                    outcome text NOT NULL,
                    error text,
                    at timestamptz NOT NULL
                )"#
            ),
            format!(
                r#"CREATE INDEX IF NOT EXISTS saga_steps_saga ON "{s}".saga_steps (saga_id, seq)"#
            ),
        ];
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Concurrent CREATE ... IF NOT EXISTS can still collide; one migrator at a time.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('event-bus-sagas-migrate'))")
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        for statement in &statements {
            sqlx::query(statement).execute(&mut *tx).await.map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    fn saga_from_row(row: &PgRow) -> Result<SagaState, RepositoryError> {
        Ok(SagaState {
            id: row.try_get("id").map_err(db)?,
            saga_type: row.try_get("saga_type").map_err(db)?,
            trigger_key: row.try_get("trigger_key").map_err(db)?,
            correlation_id: row.try_get("correlation_id").map_err(db)?,
            status: SagaStatus::from_str(row.try_get("status").map_err(db)?)?,
            data: row.try_get("data").map_err(db)?,
            completed_steps: index(row.try_get("completed_steps").map_err(db)?, "step count")?,
            failure: row.try_get("failure").map_err(db)?,
            owner: row.try_get("owner").map_err(db)?,
            lease_expires_at: row.try_get("lease_expires_at").map_err(db)?,
            deadline: row.try_get("deadline").map_err(db)?,
            created_at: row.try_get("created_at").map_err(db)?,
            updated_at: row.try_get("updated_at").map_err(db)?,
            version: row.try_get("version").map_err(db)?,
        })
    }

    fn record_from_row(row: &PgRow) -> Result<StepRecord, RepositoryError> {
        let attempt: i32 = row.try_get("attempt").map_err(db)?;
        Ok(StepRecord {
            saga_id: row.try_get("saga_id").map_err(db)?,
            step_index: index(row.try_get("step_index").map_err(db)?, "step index")?,
            step: row.try_get("step").map_err(db)?,
            phase: StepPhase::from_str(row.try_get("phase").map_err(db)?)?,
            attempt: u32::try_from(attempt)
                .map_err(|_| RepositoryError::Corrupt("negative attempt".to_owned()))?,
            outcome: StepOutcome::from_str(row.try_get("outcome").map_err(db)?)?,
            error: row.try_get("error").map_err(db)?,
            at: row.try_get("at").map_err(db)?,
        })
    }

    async fn append(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        records: &[StepRecord],
    ) -> Result<(), RepositoryError> {
        let sql = format!(
            r#"INSERT INTO "{}".saga_steps (saga_id, step_index, step, phase, attempt, outcome, error, at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"#,
            self.schema
        );
        for record in records {
            sqlx::query(&sql)
                .bind(record.saga_id)
                .bind(int(record.step_index))
                .bind(&record.step)
                .bind(record.phase.as_str())
                .bind(i32::try_from(record.attempt).unwrap_or(i32::MAX))
                .bind(record.outcome.as_str())
                .bind(&record.error)
                .bind(record.at)
                .execute(&mut **tx)
                .await
                .map_err(db)?;
        }
        Ok(())
    }
}

#[async_trait]
impl SagaRepository for PgSagaRepository {
    async fn create(&self, state: &SagaState, lease: &Lease) -> Result<Created, RepositoryError> {
        let s = &self.schema;
        let expires = lease_end(13);
        let inserted = sqlx::query(&format!(
            r#"INSERT INTO "{s}".sagas ({SAGA_COLUMNS})
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, $12, {expires})
               ON CONFLICT DO NOTHING
               RETURNING {SAGA_COLUMNS}"#
        ))
        .bind(state.id)
        .bind(&state.saga_type)
        .bind(&state.trigger_key)
        .bind(state.correlation_id)
        .bind(state.status.as_str())
        .bind(&state.data)
        .bind(int(state.completed_steps))
        .bind(&state.failure)
        .bind(state.deadline)
        .bind(state.created_at)
        .bind(state.updated_at)
        .bind(lease.owner)
        .bind(lease.duration.as_secs_f64())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        if let Some(row) = inserted {
            return Ok(Created::New(Self::saga_from_row(&row)?));
        }
        let existing = sqlx::query(&format!(
            r#"SELECT {SAGA_COLUMNS} FROM "{s}".sagas
               WHERE id = $1 OR (saga_type = $2 AND trigger_key = $3) LIMIT 1"#
        ))
        .bind(state.id)
        .bind(&state.saga_type)
        .bind(&state.trigger_key)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        Ok(Created::Duplicate(Self::saga_from_row(&existing)?))
    }

    async fn update(
        &self,
        state: &SagaState,
        records: &[StepRecord],
        lease: &Lease,
    ) -> Result<SagaState, RepositoryError> {
        let s = &self.schema;
        let expires = lease_end(10);
        let mut tx = self.pool.begin().await.map_err(db)?;
        let updated = sqlx::query(&format!(
            r#"UPDATE "{s}".sagas
               SET status = $3, data = $4, completed_steps = $5, failure = $6, deadline = $7,
                   updated_at = $8, version = version + 1,
                   owner = CASE WHEN $11 THEN NULL ELSE owner END,
                   lease_expires_at = CASE WHEN $11 THEN NULL ELSE {expires} END
               WHERE id = $1 AND version = $2 AND owner = $9
               RETURNING {SAGA_COLUMNS}"#
        ))
        .bind(state.id)
        .bind(state.version)
        .bind(state.status.as_str())
        .bind(&state.data)
        .bind(int(state.completed_steps))
        .bind(&state.failure)
        .bind(state.deadline)
        .bind(state.updated_at)
        .bind(lease.owner)
        .bind(lease.duration.as_secs_f64())
        .bind(state.status.is_terminal())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some(row) = updated else {
            // Why not, asked on the same connection: a second one could wait on a full pool.
            let stored: Option<(i64, Option<Uuid>)> = sqlx::query_as(&format!(
                r#"SELECT version, owner FROM "{s}".sagas WHERE id = $1"#
            ))
            .bind(state.id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
            return Err(match stored {
                None => RepositoryError::NotFound(state.id),
                Some((version, _)) if version != state.version => RepositoryError::Conflict {
                    id: state.id,
                    expected: state.version,
                },
                Some(_) => RepositoryError::LeaseLost {
                    id: state.id,
                    owner: lease.owner,
                },
            });
        };
        let saved = Self::saga_from_row(&row)?;
        self.append(&mut tx, records).await?;
        tx.commit().await.map_err(db)?;
        Ok(saved)
    }

    async fn acquire(
        &self,
        lease: &Lease,
        saga_types: &[String],
        limit: usize,
    ) -> Result<Vec<SagaState>, RepositoryError> {
        let s = &self.schema;
        let expires = lease_end(2);
        let rows = sqlx::query(&format!(
            r#"UPDATE "{s}".sagas AS saga
               SET owner = $1, lease_expires_at = {expires}, version = saga.version + 1
               FROM (
                   SELECT id FROM "{s}".sagas
                   WHERE status = ANY($3) AND saga_type = ANY($4)
                     AND (owner IS NULL OR lease_expires_at IS NULL OR lease_expires_at <= now())
                   ORDER BY created_at, id
                   LIMIT $5
                   FOR UPDATE SKIP LOCKED
               ) AS free
               WHERE saga.id = free.id
               RETURNING {}"#,
            SAGA_COLUMNS
                .split(", ")
                .map(|column| format!("saga.{column}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .bind(lease.owner)
        .bind(lease.duration.as_secs_f64())
        .bind(&UNFINISHED[..])
        .bind(saga_types)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let mut sagas = rows
            .iter()
            .map(Self::saga_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        sagas.sort_by_key(|saga| (saga.created_at, saga.id));
        Ok(sagas)
    }

    async fn renew(&self, ids: &[Uuid], lease: &Lease) -> Result<Vec<Uuid>, RepositoryError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let expires = lease_end(3);
        sqlx::query_scalar(&format!(
            r#"UPDATE "{}".sagas SET lease_expires_at = {expires}
               WHERE id = ANY($1) AND owner = $2
               RETURNING id"#,
            self.schema
        ))
        .bind(ids)
        .bind(lease.owner)
        .bind(lease.duration.as_secs_f64())
        .fetch_all(&self.pool)
        .await
        .map_err(db)
    }

    async fn release(&self, id: Uuid, owner: Uuid) -> Result<(), RepositoryError> {
        sqlx::query(&format!(
            r#"UPDATE "{}".sagas SET owner = NULL, lease_expires_at = NULL
               WHERE id = $1 AND owner = $2"#,
            self.schema
        ))
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn get(&self, id: Uuid) -> Result<Option<SagaState>, RepositoryError> {
        let row = sqlx::query(&format!(
            r#"SELECT {SAGA_COLUMNS} FROM "{}".sagas WHERE id = $1"#,
            self.schema
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.as_ref().map(Self::saga_from_row).transpose()
    }

    async fn list(&self, statuses: &[SagaStatus]) -> Result<Vec<SagaState>, RepositoryError> {
        let wanted: Vec<&str> = if statuses.is_empty() {
            SagaStatus::ALL.iter().map(|s| s.as_str()).collect()
        } else {
            statuses.iter().map(|s| s.as_str()).collect()
        };
        let rows = sqlx::query(&format!(
            r#"SELECT {SAGA_COLUMNS} FROM "{}".sagas WHERE status = ANY($1)
               ORDER BY created_at, id"#,
            self.schema
        ))
        .bind(wanted)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(Self::saga_from_row).collect()
    }

    async fn steps(&self, id: Uuid) -> Result<Vec<StepRecord>, RepositoryError> {
        let rows = sqlx::query(&format!(
            r#"SELECT saga_id, step_index, step, phase, attempt, outcome, error, at
               FROM "{}".saga_steps WHERE saga_id = $1 ORDER BY seq"#,
            self.schema
        ))
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(Self::record_from_row).collect()
    }
}
