//! Which store keeps idempotency keys, by the name `EVENT_BUS_DEDUP_STORE` gives.

use event_bus_core::{BusSettings, ConfigError};

/// Where idempotency keys are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DedupStoreChoice {
    /// In the process's memory: duplicates are absorbed within one process only.
    Memory,
    /// In Redis (`REDIS_EVENT_URL`), shared by every process.
    Redis,
    /// In PostgreSQL (`DATABASE_URL`, the event store's schema), shared by every process; wired
    /// by `event_store_postgres::connect_bus`.
    Postgres,
}

impl DedupStoreChoice {
    /// The choice `settings` make; `None` when `EVENT_BUS_DEDUP_STORE` is unset.
    pub fn from_settings(settings: &BusSettings) -> Result<Option<Self>, ConfigError> {
        settings.dedup_store.as_deref().map(Self::parse).transpose()
    }

    /// The choice `name` (case-insensitive) makes.
    pub fn parse(name: &str) -> Result<Self, ConfigError> {
        match name.trim().to_ascii_lowercase().as_str() {
            "memory" => Ok(Self::Memory),
            "redis" => Ok(Self::Redis),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            _ => Err(ConfigError::InvalidValue {
                variable: "EVENT_BUS_DEDUP_STORE",
                value: name.to_owned(),
                expected: "memory, redis or postgres",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dedup_store_is_chosen_by_name_and_an_unknown_one_is_an_error() {
        assert_eq!(
            DedupStoreChoice::from_settings(&BusSettings::default()).unwrap(),
            None
        );
        let settings = BusSettings::from_vars([("EVENT_BUS_DEDUP_STORE", "Postgres")]).unwrap();
        assert_eq!(
            DedupStoreChoice::from_settings(&settings).unwrap(),
            Some(DedupStoreChoice::Postgres)
        );
        let settings = BusSettings::from_vars([("EVENT_BUS_DEDUP_STORE", "mongo")]).unwrap();
        let error = DedupStoreChoice::from_settings(&settings).unwrap_err();
        assert!(
            matches!(error, ConfigError::InvalidValue { ref value, .. } if value == "mongo"),
            "{error}"
        );
        assert_eq!(
            error.to_string(),
            "EVENT_BUS_DEDUP_STORE=`mongo` is not valid; expected memory, redis or postgres"
        );
    }
}
