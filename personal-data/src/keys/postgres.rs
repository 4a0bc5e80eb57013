//! [`PgKeyStore`]: data keys in PostgreSQL, each wrapped by the master key; a forgotten
//! subject's row keeps no key, only when it was forgotten.

use async_trait::async_trait;
use event_store_postgres::Schema;
use sqlx::{PgPool, Row};

use super::master::MasterKeys;
use super::{KeyState, KeyStore, KeyStoreError};
use crate::key::{DataKey, KEY_BYTES};

const BACKEND: &str = "postgres";

/// What the PostgreSQL key store found wrong, besides the database's own errors.
#[derive(Debug, thiserror::Error)]
enum PgKeyError {
    #[error(
        "the data key of subject `{0}` unwraps under neither the master key nor the previous one"
    )]
    Unwrap(String),
}

fn pg(error: sqlx::Error) -> KeyStoreError {
    KeyStoreError::backend(BACKEND, error)
}

/// Data keys in the `personal_data_keys` table of a schema, wrapped with AES-256-GCM by the
/// master key and bound to their subject.
#[derive(Clone)]
pub struct PgKeyStore {
    pool: PgPool,
    table: String,
    masters: MasterKeys,
}

impl PgKeyStore {
    /// The key store in `schema` (created with its table if missing), wrapping with `masters`.
    pub async fn connect(
        pool: PgPool,
        schema: &Schema,
        masters: MasterKeys,
    ) -> Result<Self, KeyStoreError> {
        let table = schema.table("personal_data_keys");
        sqlx::raw_sql(&format!(
            r#"CREATE SCHEMA IF NOT EXISTS "{}";
CREATE TABLE IF NOT EXISTS {table} (
    subject TEXT PRIMARY KEY,
    wrapped_key BYTEA,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    forgotten_at TIMESTAMPTZ
);"#,
            schema.name()
        ))
        .execute(&pool)
        .await
        .map_err(pg)?;
        Ok(Self {
            pool,
            table,
            masters,
        })
    }

    /// Rewraps with the current master key every key the previous one wrapped; returns how
    /// many. After it, the previous master key can be dropped.
    pub async fn rewrap(&self) -> Result<u64, KeyStoreError> {
        let rows = sqlx::query(&format!(
            "SELECT subject, wrapped_key FROM {} WHERE wrapped_key IS NOT NULL",
            self.table
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(pg)?;
        let mut rewrapped = 0;
        for row in rows {
            let subject: String = row.try_get("subject").map_err(pg)?;
            let wrapped: Vec<u8> = row.try_get("wrapped_key").map_err(pg)?;
            let (key, current) = self.unwrap(&wrapped, &subject)?;
            if current {
                continue;
            }
            let done = sqlx::query(&format!(
                "UPDATE {} SET wrapped_key = $2 WHERE subject = $1 AND wrapped_key = $3",
                self.table
            ))
            .bind(&subject)
            .bind(self.masters.wrap(&key, &subject))
            .bind(&wrapped)
            .execute(&self.pool)
            .await
            .map_err(pg)?;
            rewrapped += done.rows_affected();
        }
        Ok(rewrapped)
    }

    fn unwrap(
        &self,
        wrapped: &[u8],
        subject: &str,
    ) -> Result<(zeroize::Zeroizing<Vec<u8>>, bool), KeyStoreError> {
        self.masters
            .unwrap(wrapped, subject)
            .ok()
            .filter(|(key, _)| key.len() == KEY_BYTES)
            .ok_or_else(|| KeyStoreError::backend(BACKEND, PgKeyError::Unwrap(subject.to_owned())))
    }

    fn state(
        &self,
        subject: &str,
        row: Option<sqlx::postgres::PgRow>,
    ) -> Result<KeyState, KeyStoreError> {
        let Some(row) = row else {
            return Ok(KeyState::Absent);
        };
        let wrapped: Option<Vec<u8>> = row.try_get("wrapped_key").map_err(pg)?;
        let Some(wrapped) = wrapped else {
            return Ok(KeyState::Forgotten);
        };
        let (key, _) = self.unwrap(&wrapped, subject)?;
        let bytes: &[u8; KEY_BYTES] = key.as_slice().try_into().expect("length checked");
        Ok(KeyState::Live(DataKey::from_bytes(bytes)))
    }
}

#[async_trait]
impl KeyStore for PgKeyStore {
    async fn key_or_create(&self, subject: &str) -> Result<KeyState, KeyStoreError> {
        let (_, bytes) = DataKey::generate();
        // Inserts a new key unless the subject has a row (a key, or a forgotten mark), and
        // returns the row that is there either way.
        let row = sqlx::query(&format!(
            "WITH made AS (
                 INSERT INTO {t} (subject, wrapped_key) VALUES ($1, $2)
                 ON CONFLICT (subject) DO NOTHING RETURNING wrapped_key
             )
             SELECT wrapped_key FROM made
             UNION ALL SELECT wrapped_key FROM {t} WHERE subject = $1",
            t = self.table
        ))
        .bind(subject)
        .bind(self.masters.wrap(bytes.as_slice(), subject))
        .fetch_optional(&self.pool)
        .await
        .map_err(pg)?;
        match self.state(subject, row)? {
            // Lost a race with another process inserting at the same moment: read its key.
            KeyState::Absent => self.key(subject).await,
            state => Ok(state),
        }
    }

    async fn key(&self, subject: &str) -> Result<KeyState, KeyStoreError> {
        let row = sqlx::query(&format!(
            "SELECT wrapped_key FROM {} WHERE subject = $1",
            self.table
        ))
        .bind(subject)
        .fetch_optional(&self.pool)
        .await
        .map_err(pg)?;
        self.state(subject, row)
    }

    async fn forget(&self, subject: &str) -> Result<bool, KeyStoreError> {
        let mut tx = self.pool.begin().await.map_err(pg)?;
        let held: Option<bool> = sqlx::query_scalar(&format!(
            "SELECT wrapped_key IS NOT NULL FROM {} WHERE subject = $1 FOR UPDATE",
            self.table
        ))
        .bind(subject)
        .fetch_optional(&mut *tx)
        .await
        .map_err(pg)?;
        sqlx::query(&format!(
            "INSERT INTO {t} AS k (subject, wrapped_key, forgotten_at) VALUES ($1, NULL, now())
             ON CONFLICT (subject) DO UPDATE SET wrapped_key = NULL,
                 forgotten_at = COALESCE(k.forgotten_at, now())",
            t = self.table
        ))
        .bind(subject)
        .execute(&mut *tx)
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        Ok(held.unwrap_or(false))
    }
}
