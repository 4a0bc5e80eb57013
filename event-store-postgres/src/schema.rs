//! The schema holding the tables, its name checked, and the tables created on connect.

use event_store::store::StoreError;
use sqlx::PgPool;

use crate::error::pg;

/// Schema used when none is given.
pub const DEFAULT_SCHEMA: &str = "event_store";

/// A checked schema name: lower-case letters, digits and `_`, not starting with a digit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schema(String);

impl Schema {
    /// Checks `name`.
    pub fn new(name: &str) -> Result<Self, StoreError> {
        let valid = !name.is_empty()
            && name.len() <= 63
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(StoreError::InvalidSetting(format!(
                "schema name `{name}`: use lower-case letters, digits and `_`, at most 63, not starting with a digit"
            )))
        }
    }

    /// The schema name.
    pub fn name(&self) -> &str {
        &self.0
    }

    /// A table of the schema, quoted for SQL.
    pub fn table(&self, table: &str) -> String {
        format!("\"{}\".{table}", self.0)
    }

    /// Key of the advisory lock that serializes appends in this schema.
    pub(crate) fn lock_key(&self) -> i64 {
        // FNV-1a: stable across processes and builds.
        let hash = self
            .0
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
                (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
            });
        i64::from_ne_bytes(hash.to_ne_bytes())
    }

    /// Creates the schema and its tables if missing; safe to run from several processes.
    pub(crate) async fn migrate(&self, pool: &PgPool) -> Result<(), StoreError> {
        let s = &self.0;
        let ddl = format!(
            r#"
CREATE SCHEMA IF NOT EXISTS "{s}";
CREATE TABLE IF NOT EXISTS "{s}".streams (
    aggregate_type text NOT NULL,
    aggregate_id text NOT NULL,
    version bigint NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);
CREATE TABLE IF NOT EXISTS "{s}".events (
    position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id text NOT NULL UNIQUE,
    aggregate_type text NOT NULL,
    aggregate_id text NOT NULL,
    version bigint NOT NULL,
    event_type text NOT NULL,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    envelope jsonb NOT NULL,
    UNIQUE (aggregate_type, aggregate_id, version)
);
CREATE INDEX IF NOT EXISTS events_type_position ON "{s}".events (event_type, position);
CREATE INDEX IF NOT EXISTS events_occurred_at ON "{s}".events (occurred_at);
CREATE TABLE IF NOT EXISTS "{s}".events_archive (
    position bigint PRIMARY KEY,
    event_id text NOT NULL,
    aggregate_type text NOT NULL,
    aggregate_id text NOT NULL,
    version bigint NOT NULL,
    event_type text NOT NULL,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL,
    envelope jsonb NOT NULL,
    archived_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS "{s}".snapshots (
    aggregate_type text NOT NULL,
    aggregate_id text NOT NULL,
    version bigint NOT NULL,
    state jsonb NOT NULL,
    taken_at timestamptz NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);
CREATE TABLE IF NOT EXISTS "{s}".outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    position bigint NOT NULL,
    envelope jsonb NOT NULL,
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    published_at timestamptz
);
ALTER TABLE "{s}".outbox ADD COLUMN IF NOT EXISTS claimed_by uuid;
ALTER TABLE "{s}".outbox ADD COLUMN IF NOT EXISTS claimed_until timestamptz;
CREATE INDEX IF NOT EXISTS outbox_pending ON "{s}".outbox (id) WHERE published_at IS NULL;
CREATE TABLE IF NOT EXISTS "{s}".parked_dead_letters (
    id uuid PRIMARY KEY,
    received_at timestamptz NOT NULL,
    event_id text,
    event_type text,
    reason text NOT NULL,
    error text NOT NULL,
    attempts integer NOT NULL,
    redrives integer NOT NULL,
    original_topic text NOT NULL,
    subscription text NOT NULL,
    first_failure_at timestamptz,
    last_failure_at timestamptz,
    message_key text,
    headers jsonb NOT NULL,
    payload bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS "{s}".dedup_keys (
    key text PRIMARY KEY,
    done boolean NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS dedup_keys_expires_at ON "{s}".dedup_keys (expires_at);
-- CloudEvents ids are any string; tables made when they were UUIDs take text now.
DO $$
DECLARE
    uuid_column record;
BEGIN
    FOR uuid_column IN
        SELECT table_name FROM information_schema.columns
        WHERE table_schema = '{s}' AND column_name = 'event_id' AND data_type = 'uuid'
    LOOP
        EXECUTE format('ALTER TABLE %I.%I ALTER COLUMN event_id TYPE text', '{s}', uuid_column.table_name);
    END LOOP;
END $$;
"#
        );
        let mut tx = pool.begin().await.map_err(pg)?;
        // Concurrent CREATE ... IF NOT EXISTS can still collide; one migration at a time.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(self.lock_key() ^ 1)
            .execute(&mut *tx)
            .await
            .map_err(pg)?;
        sqlx::raw_sql(&ddl).execute(&mut *tx).await.map_err(pg)?;
        tx.commit().await.map_err(pg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_checked() {
        assert!(Schema::new("event_store").is_ok());
        assert!(Schema::new("t_01").is_ok());
        for bad in ["", "1abc", "Events", "a;drop", "a\"b", &"x".repeat(64)] {
            let error = Schema::new(bad).unwrap_err();
            assert!(matches!(error, StoreError::InvalidSetting(_)), "{bad}");
        }
    }
}
