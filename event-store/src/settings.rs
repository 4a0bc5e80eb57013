//! The event store's own variables.

use event_bus_core::{BusSettings, ConfigError};
use serde::Deserialize;

use crate::store::RetentionMode;

/// The variables the event store reads.
pub const VARIABLES: &[&str] = &[
    "DATABASE_URL",
    "EVENT_STORE_SNAPSHOT_INTERVAL",
    "EVENT_STORE_TTL_DAYS",
    "EVENT_STORE_RETENTION_MODE",
    "EVENT_STORE_SCHEMA",
];

#[derive(Deserialize)]
struct Variables {
    database_url: Option<String>,
    event_store_snapshot_interval: Option<u64>,
    event_store_ttl_days: Option<u32>,
    event_store_retention_mode: Option<String>,
    event_store_schema: Option<String>,
}

/// Where the store is and how it keeps events.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreSettings {
    /// `DATABASE_URL`: PostgreSQL of the event store, outbox and parked dead letters.
    pub database_url: String,
    /// `EVENT_STORE_SNAPSHOT_INTERVAL`: events folded before rebuilding a state saves a
    /// snapshot (default 100; 0 turns snapshots off).
    pub snapshot_interval: u64,
    /// `EVENT_STORE_TTL_DAYS`: age after which the retention job expires events (default: keep).
    pub ttl_days: Option<u32>,
    /// `EVENT_STORE_RETENTION_MODE`: `archive` (default: expired events move to the archive
    /// table) or `delete` (gone for good).
    pub retention_mode: RetentionMode,
    /// `EVENT_STORE_SCHEMA`: PostgreSQL schema of the store (default `event_store`).
    pub schema: String,
}

impl std::fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSettings")
            .field(
                "database_url",
                &event_bus_core::redact::redacted_url(&self.database_url),
            )
            .field("snapshot_interval", &self.snapshot_interval)
            .field("ttl_days", &self.ttl_days)
            .field("schema", &self.schema)
            .finish()
    }
}

impl StoreSettings {
    /// Reads the store's variables from the bus settings' source.
    pub fn from_settings(settings: &BusSettings) -> Result<Self, ConfigError> {
        let vars: Variables = settings.source.read()?;
        Ok(Self {
            database_url: vars
                .database_url
                .filter(|url| !url.is_empty())
                .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned()),
            snapshot_interval: vars.event_store_snapshot_interval.unwrap_or(100),
            ttl_days: vars.event_store_ttl_days,
            retention_mode: match vars.event_store_retention_mode.as_deref() {
                None | Some("" | "archive") => RetentionMode::Archive,
                Some("delete") => RetentionMode::Delete,
                Some(other) => {
                    return Err(ConfigError::InvalidValue {
                        variable: "EVENT_STORE_RETENTION_MODE",
                        value: other.to_owned(),
                        expected: "`archive` or `delete`",
                    });
                }
            },
            schema: vars
                .event_store_schema
                .filter(|schema| !schema.is_empty())
                .unwrap_or_else(|| "event_store".to_owned()),
        })
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_settings(&BusSettings::from_env()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_store_settings_have_defaults_and_overrides() {
        let defaults = StoreSettings::from_settings(&BusSettings::default()).unwrap();
        assert_eq!(defaults.snapshot_interval, 100);
        assert_eq!(defaults.ttl_days, None);
        assert_eq!(
            defaults.database_url,
            "postgres://postgres@127.0.0.1:5432/postgres"
        );
        assert_eq!(defaults.schema, "event_store");
        assert_eq!(defaults.retention_mode, RetentionMode::Archive);
        let delete = BusSettings::from_vars([("EVENT_STORE_RETENTION_MODE", "delete")]).unwrap();
        assert_eq!(
            StoreSettings::from_settings(&delete)
                .unwrap()
                .retention_mode,
            RetentionMode::Delete
        );
        let unknown = BusSettings::from_vars([("EVENT_STORE_RETENTION_MODE", "shred")]).unwrap();
        let error = StoreSettings::from_settings(&unknown)
            .unwrap_err()
            .to_string();
        assert!(error.contains("EVENT_STORE_RETENTION_MODE"), "{error}");
        let settings = BusSettings::from_vars([
            ("EVENT_STORE_SNAPSHOT_INTERVAL", "50"),
            ("EVENT_STORE_TTL_DAYS", "30"),
            ("DATABASE_URL", "postgres://app@127.0.0.1:5433/events"),
        ])
        .unwrap();
        let settings = StoreSettings::from_settings(&settings).unwrap();
        assert_eq!(settings.snapshot_interval, 50);
        assert_eq!(settings.ttl_days, Some(30));
        assert_eq!(
            settings.database_url,
            "postgres://app@127.0.0.1:5433/events"
        );
    }
}
