//! Saga settings from the environment (and an optional file), with the `config` crate.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use event_bus_core::RetryPolicy;
use serde::Deserialize;

/// The variables the sagas read.
pub const VARIABLES: &[&str] = &[
    "ENABLE_SAGAS",
    "SAGA_TIMEOUT_SECONDS",
    "SAGA_MAX_STEP_ATTEMPTS",
    "SAGA_MAX_COMPENSATION_ATTEMPTS",
    "SAGA_RETRY_INITIAL_BACKOFF_MS",
    "SAGA_RETRY_MAX_BACKOFF_MS",
    "SAGA_DATABASE_URL",
    "SAGA_DATABASE_SCHEMA",
    "SAGA_DATABASE_POOL_SIZE",
    "SAGA_LEASE_SECONDS",
];

/// Why saga settings could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("invalid saga settings: {0}")]
pub struct SettingsError(#[from] config::ConfigError);

/// Everything the orchestrator reads from its environment.
#[derive(Clone, PartialEq)]
pub struct SagaSettings {
    /// `ENABLE_SAGAS`: when false, no saga starts (default true).
    pub enabled: bool,
    /// `SAGA_TIMEOUT_SECONDS`: a saga not finished this long after it started is compensated
    /// (default 300); a definition may set its own.
    pub timeout: Duration,
    /// `SAGA_MAX_STEP_ATTEMPTS`: attempts of a step's action before the saga compensates (default 5).
    pub max_step_attempts: u32,
    /// `SAGA_MAX_COMPENSATION_ATTEMPTS`: attempts of a compensation before the saga is marked
    /// failed for an operator (default 10).
    pub max_compensation_attempts: u32,
    /// Delays between attempts: `SAGA_RETRY_INITIAL_BACKOFF_MS` (default 100) and
    /// `SAGA_RETRY_MAX_BACKOFF_MS` (default 10000), doubling, 20 % jitter, one immediate retry.
    pub retry: RetryPolicy,
    /// `SAGA_DATABASE_URL`: PostgreSQL URL of the saga store (default
    /// `postgres://postgres@127.0.0.1:5432/postgres`).
    pub database_url: String,
    /// `SAGA_DATABASE_SCHEMA`: schema holding the saga tables (default `sagas`).
    pub database_schema: String,
    /// `SAGA_DATABASE_POOL_SIZE`: connections in the PostgreSQL repository's pool (default 8).
    pub database_pool_size: u32,
    /// `SAGA_LEASE_SECONDS`: how long an instance holds a saga it drives without renewing
    /// (default 10); renewed every third of it, so another instance takes over the sagas of
    /// one that died within about this long.
    pub lease: Duration,
}

impl std::fmt::Debug for SagaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SagaSettings")
            .field("enabled", &self.enabled)
            .field("timeout", &self.timeout)
            .field("max_step_attempts", &self.max_step_attempts)
            .field("max_compensation_attempts", &self.max_compensation_attempts)
            .field("retry", &self.retry)
            .field(
                "database_url",
                &event_bus_core::redact::redacted_url(&self.database_url),
            )
            .field("database_schema", &self.database_schema)
            .field("database_pool_size", &self.database_pool_size)
            .field("lease", &self.lease)
            .finish()
    }
}

#[derive(Default, Deserialize)]
struct RawSettings {
    enable_sagas: Option<bool>,
    saga_timeout_seconds: Option<u64>,
    saga_max_step_attempts: Option<u32>,
    saga_max_compensation_attempts: Option<u32>,
    saga_retry_initial_backoff_ms: Option<u64>,
    saga_retry_max_backoff_ms: Option<u64>,
    saga_database_url: Option<String>,
    saga_database_schema: Option<String>,
    saga_database_pool_size: Option<u32>,
    saga_lease_seconds: Option<u64>,
}

impl Default for SagaSettings {
    fn default() -> Self {
        Self::from_raw(RawSettings::default())
    }
}

impl SagaSettings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::load(None, None)
    }

    /// Reads a TOML file (keys as the variable names in lower case), overridden by the
    /// process environment.
    pub fn from_file_and_env(path: &Path) -> Result<Self, SettingsError> {
        Self::load(Some(path), None)
    }

    /// Reads the given variables instead of the process environment.
    pub fn from_vars<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, SettingsError> {
        let vars = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Self::load(None, Some(vars))
    }

    fn load(
        file: Option<&Path>,
        vars: Option<HashMap<String, String>>,
    ) -> Result<Self, SettingsError> {
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            builder = builder.add_source(config::File::from(path).required(true));
        }
        let environment = config::Environment::default()
            .try_parsing(true)
            .source(vars);
        let raw: RawSettings = builder.add_source(environment).build()?.try_deserialize()?;
        Ok(Self::from_raw(raw))
    }

    fn from_raw(raw: RawSettings) -> Self {
        Self {
            enabled: raw.enable_sagas.unwrap_or(true),
            timeout: Duration::from_secs(raw.saga_timeout_seconds.unwrap_or(300).max(1)),
            max_step_attempts: raw.saga_max_step_attempts.unwrap_or(5).max(1),
            max_compensation_attempts: raw.saga_max_compensation_attempts.unwrap_or(10).max(1),
            retry: RetryPolicy {
                immediate_attempts: 1,
                initial_backoff: Duration::from_millis(
                    raw.saga_retry_initial_backoff_ms.unwrap_or(100),
                ),
                multiplier: 2.0,
                max_backoff: Duration::from_millis(raw.saga_retry_max_backoff_ms.unwrap_or(10_000)),
                jitter: 0.2,
            },
            database_url: raw
                .saga_database_url
                .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned()),
            database_schema: raw
                .saga_database_schema
                .unwrap_or_else(|| "sagas".to_owned()),
            database_pool_size: raw.saga_database_pool_size.unwrap_or(8).max(1),
            lease: Duration::from_secs(raw.saga_lease_seconds.unwrap_or(10).max(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_enable_sagas_with_a_five_minute_timeout() {
        let settings = SagaSettings::from_vars([("UNRELATED", "x")]).unwrap();
        assert_eq!(settings, SagaSettings::default());
        assert!(settings.enabled);
        assert_eq!(settings.timeout, Duration::from_secs(300));
        assert_eq!(settings.max_step_attempts, 5);
        assert_eq!(settings.database_pool_size, 8);
        assert_eq!(settings.lease, Duration::from_secs(10));
    }

    #[test]
    fn variables_override_defaults() {
        let settings = SagaSettings::from_vars([
            ("ENABLE_SAGAS", "false"),
            ("SAGA_TIMEOUT_SECONDS", "7"),
            ("SAGA_MAX_STEP_ATTEMPTS", "2"),
            ("SAGA_RETRY_INITIAL_BACKOFF_MS", "5"),
            ("SAGA_DATABASE_SCHEMA", "orders"),
            ("SAGA_DATABASE_POOL_SIZE", "20"),
            ("SAGA_LEASE_SECONDS", "3"),
        ])
        .unwrap();
        assert!(!settings.enabled);
        assert_eq!(settings.timeout, Duration::from_secs(7));
        assert_eq!(settings.max_step_attempts, 2);
        assert_eq!(settings.retry.initial_backoff, Duration::from_millis(5));
        assert_eq!(settings.database_schema, "orders");
        assert_eq!(settings.database_pool_size, 20);
        assert_eq!(settings.lease, Duration::from_secs(3));
    }

    #[test]
    fn a_malformed_value_is_an_error() {
        let error = SagaSettings::from_vars([("SAGA_TIMEOUT_SECONDS", "soon")]).unwrap_err();
        assert!(
            error.to_string().starts_with("invalid saga settings"),
            "{error}"
        );
    }
}
