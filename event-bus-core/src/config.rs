//! Settings from the environment (and an optional file), with the `config` crate.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use crate::topics::TopicNames;

/// Every environment variable the project reads (the bus, the event store, the CLI, the sagas
/// and logging), as the README's configuration tables document them.
pub const VARIABLES: &[&str] = &[
    "EVENT_BUS_TYPE",
    "EVENT_BUS_TOPIC_PREFIX",
    "EVENT_BUS_SUBSCRIPTION_PREFIX",
    "EVENT_BUS_ENABLE_ORDERING",
    "EVENT_BUS_ENABLE_BATCHING",
    "DEAD_LETTER_TOPIC",
    "DEAD_LETTER_MAX_RETRIES",
    "EVENT_BUS_MAX_MESSAGE_BYTES",
    "EVENT_BUS_IDEMPOTENCY_TTL_SECONDS",
    "EVENT_BUS_ACK_DEADLINE_SECONDS",
    "REDIS_EVENT_URL",
    "REDIS_CHANNEL_PREFIX",
    "REDIS_STREAM_MAX_LEN",
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_CONSUMER_GROUP",
    "KAFKA_LINGER_MS",
    "KAFKA_BATCH_SIZE",
    "KAFKA_ENABLE_IDEMPOTENCE",
    "KAFKA_TOPIC_PARTITIONS",
    "KAFKA_REPLICATION_FACTOR",
    "KAFKA_SESSION_TIMEOUT_MS",
    "KAFKA_MAX_POLL_INTERVAL_MS",
    "RABBITMQ_URL",
    "RABBITMQ_QUEUE_EXPIRES_SECONDS",
    "GCP_PROJECT_ID",
    "PUBSUB_EMULATOR_HOST",
    "EVENT_BUS_METRICS_PORT",
    "EVENT_BUS_LOG_FORMAT",
    "RUST_LOG",
    "DATABASE_URL",
    "EVENT_STORE_SNAPSHOT_INTERVAL",
    "EVENT_STORE_TTL_DAYS",
    "EVENT_STORE_SCHEMA",
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

/// Which backend carries the events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BusType {
    /// In-process bus; the default.
    Memory,
    /// Redis Streams.
    Redis,
    /// Kafka.
    Kafka,
    /// RabbitMQ.
    RabbitMq,
    /// Google Cloud Pub/Sub.
    PubSub,
}

impl BusType {
    /// Every backend, in the order the docs list them.
    pub const ALL: [BusType; 5] = [
        Self::Memory,
        Self::Redis,
        Self::Kafka,
        Self::RabbitMq,
        Self::PubSub,
    ];

    /// The value of `EVENT_BUS_TYPE` that selects this backend.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Redis => "redis",
            Self::Kafka => "kafka",
            Self::RabbitMq => "rabbitmq",
            Self::PubSub => "pubsub",
        }
    }
}

impl fmt::Display for BusType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BusType {
    type Err = ConfigError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let wanted = value.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == wanted)
            .ok_or_else(|| ConfigError::UnknownBusType(value.to_owned()))
    }
}

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `EVENT_BUS_TYPE` names no backend.
    #[error(
        "unknown EVENT_BUS_TYPE `{0}`; expected one of: memory, redis, kafka, rabbitmq, pubsub"
    )]
    UnknownBusType(String),
    /// The backend exists but was not compiled into this binary.
    #[error(
        "EVENT_BUS_TYPE `{backend}` is not available in this build (enable cargo feature `{backend}` of event-bus-brokers); available: {available}"
    )]
    BackendNotCompiled {
        /// The requested backend.
        backend: BusType,
        /// Backends this binary has.
        available: String,
    },
    /// A source could not be read or a value has the wrong type.
    #[error("invalid event bus settings: {0}")]
    Source(#[from] config::ConfigError),
}

/// Everything the bus reads from its environment.
#[derive(Clone, Debug, PartialEq)]
pub struct BusSettings {
    /// `EVENT_BUS_TYPE` (default `memory`).
    pub bus_type: BusType,
    /// `EVENT_BUS_TOPIC_PREFIX` (default `events`).
    pub topic_prefix: String,
    /// `EVENT_BUS_SUBSCRIPTION_PREFIX` (default: the topic prefix).
    pub subscription_prefix: String,
    /// `EVENT_BUS_ENABLE_ORDERING`: keep per-aggregate order (default false).
    pub enable_ordering: bool,
    /// `EVENT_BUS_ENABLE_BATCHING`: let backends batch publishes (default true).
    pub enable_batching: bool,
    /// `DEAD_LETTER_TOPIC` (default `{topic prefix}-dead-letter`).
    pub dead_letter_topic: String,
    /// `DEAD_LETTER_MAX_RETRIES`: delivery attempts before dead-lettering (default 5).
    pub dead_letter_max_retries: u32,
    /// `EVENT_BUS_MAX_MESSAGE_BYTES`: larger messages are refused or dead-lettered (default 1 MiB).
    pub max_message_bytes: usize,
    /// `EVENT_BUS_IDEMPOTENCY_TTL_SECONDS`: how long handled keys are remembered (default 1 day).
    pub idempotency_ttl: Duration,
    /// `EVENT_BUS_ACK_DEADLINE_SECONDS`: a delivery unsettled this long is redelivered by
    /// backends that track it themselves, such as Redis (default 30).
    pub ack_deadline: Duration,
    /// `REDIS_EVENT_URL`.
    pub redis_url: String,
    /// `REDIS_CHANNEL_PREFIX`: when set, Redis uses plain Pub/Sub channels under this prefix
    /// instead of streams; not durable, no consumer groups, no redelivery.
    pub redis_channel_prefix: Option<String>,
    /// `REDIS_STREAM_MAX_LEN`: trim each stream to about this many entries (default: no trimming).
    pub redis_stream_max_len: Option<usize>,
    /// `KAFKA_BOOTSTRAP_SERVERS`.
    pub kafka_bootstrap_servers: String,
    /// `KAFKA_CONSUMER_GROUP`: the Kafka client id; consumer groups come from subscription names.
    pub kafka_consumer_group: String,
    /// `KAFKA_LINGER_MS`: how long the producer waits to fill a batch (default 5 ms; 0 when
    /// batching is off).
    pub kafka_linger: Duration,
    /// `KAFKA_BATCH_SIZE`: largest producer batch in bytes (default 1,000,000).
    pub kafka_batch_size: usize,
    /// `KAFKA_ENABLE_IDEMPOTENCE`: idempotent producer, no duplicates or reordering on retry
    /// (default true).
    pub kafka_enable_idempotence: bool,
    /// `KAFKA_TOPIC_PARTITIONS`: partitions of the topics the bus creates (default 3).
    pub kafka_topic_partitions: i32,
    /// `KAFKA_REPLICATION_FACTOR`: replicas of the topics the bus creates (default 1).
    pub kafka_replication_factor: i32,
    /// `KAFKA_SESSION_TIMEOUT_MS`: a consumer silent this long leaves its group (default 6000).
    pub kafka_session_timeout: Duration,
    /// `KAFKA_MAX_POLL_INTERVAL_MS`: a consumer that asks for no event this long leaves its
    /// group; also how long a rebalance waits for members (default 300000).
    pub kafka_max_poll_interval: Duration,
    /// `RABBITMQ_URL`.
    pub rabbitmq_url: String,
    /// `RABBITMQ_QUEUE_EXPIRES_SECONDS`: the broker deletes queues unused this long (default: never).
    pub rabbitmq_queue_expiry: Option<Duration>,
    /// `GCP_PROJECT_ID`.
    pub gcp_project_id: String,
    /// `PUBSUB_EMULATOR_HOST`; real GCP with default credentials when unset.
    pub pubsub_emulator_host: Option<String>,
    /// `EVENT_STORE_SNAPSHOT_INTERVAL`: events folded before rebuilding a state saves a
    /// snapshot (default 100; 0 turns snapshots off).
    pub event_store_snapshot_interval: u64,
    /// `EVENT_STORE_TTL_DAYS`: age after which the retention job expires events (default: keep).
    pub event_store_ttl_days: Option<u32>,
    /// `DATABASE_URL`: PostgreSQL of the event store, outbox and parked dead letters.
    pub database_url: String,
    /// `EVENT_BUS_METRICS_PORT`: serve Prometheus metrics on `127.0.0.1` at this port (feature
    /// `prometheus`; default: no exporter).
    pub metrics_port: Option<u16>,
}

#[derive(Default, Deserialize)]
struct RawSettings {
    event_bus_type: Option<String>,
    event_bus_topic_prefix: Option<String>,
    event_bus_subscription_prefix: Option<String>,
    event_bus_enable_ordering: Option<bool>,
    event_bus_enable_batching: Option<bool>,
    dead_letter_topic: Option<String>,
    dead_letter_max_retries: Option<u32>,
    event_bus_max_message_bytes: Option<usize>,
    event_bus_idempotency_ttl_seconds: Option<u64>,
    event_bus_ack_deadline_seconds: Option<u64>,
    redis_event_url: Option<String>,
    redis_channel_prefix: Option<String>,
    redis_stream_max_len: Option<usize>,
    kafka_bootstrap_servers: Option<String>,
    kafka_consumer_group: Option<String>,
    kafka_linger_ms: Option<u64>,
    kafka_batch_size: Option<usize>,
    kafka_enable_idempotence: Option<bool>,
    kafka_topic_partitions: Option<i32>,
    kafka_replication_factor: Option<i32>,
    kafka_session_timeout_ms: Option<u64>,
    kafka_max_poll_interval_ms: Option<u64>,
    rabbitmq_url: Option<String>,
    rabbitmq_queue_expires_seconds: Option<u64>,
    gcp_project_id: Option<String>,
    pubsub_emulator_host: Option<String>,
    event_store_snapshot_interval: Option<u64>,
    event_store_ttl_days: Option<u32>,
    database_url: Option<String>,
    event_bus_metrics_port: Option<u16>,
}

impl Default for BusSettings {
    fn default() -> Self {
        Self::from_raw(RawSettings::default()).expect("defaults are valid")
    }
}

impl BusSettings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::load(None, None)
    }

    /// Reads a TOML file (keys as the variable names in lower case), overridden by the
    /// process environment.
    pub fn from_file_and_env(path: &Path) -> Result<Self, ConfigError> {
        Self::load(Some(path), None)
    }

    /// Reads the given variables instead of the process environment.
    pub fn from_vars<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, ConfigError> {
        let vars: HashMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Self::load(None, Some(vars))
    }

    fn load(
        file: Option<&Path>,
        vars: Option<HashMap<String, String>>,
    ) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            builder = builder.add_source(config::File::from(path).required(true));
        }
        let environment = config::Environment::default()
            .try_parsing(true)
            .source(vars);
        let raw: RawSettings = builder.add_source(environment).build()?.try_deserialize()?;
        Self::from_raw(raw)
    }

    fn from_raw(raw: RawSettings) -> Result<Self, ConfigError> {
        let bus_type = match raw.event_bus_type.as_deref().map(str::trim) {
            None | Some("") => BusType::Memory,
            Some(value) => value.parse()?,
        };
        let topic_prefix = raw
            .event_bus_topic_prefix
            .unwrap_or_else(|| "events".to_owned());
        Ok(Self {
            bus_type,
            subscription_prefix: raw
                .event_bus_subscription_prefix
                .unwrap_or_else(|| topic_prefix.clone()),
            dead_letter_topic: raw
                .dead_letter_topic
                .unwrap_or_else(|| format!("{topic_prefix}-dead-letter")),
            topic_prefix,
            enable_ordering: raw.event_bus_enable_ordering.unwrap_or(false),
            enable_batching: raw.event_bus_enable_batching.unwrap_or(true),
            dead_letter_max_retries: raw.dead_letter_max_retries.unwrap_or(5).max(1),
            max_message_bytes: raw.event_bus_max_message_bytes.unwrap_or(1024 * 1024),
            idempotency_ttl: Duration::from_secs(
                raw.event_bus_idempotency_ttl_seconds.unwrap_or(86_400),
            ),
            ack_deadline: Duration::from_secs(
                raw.event_bus_ack_deadline_seconds.unwrap_or(30).max(1),
            ),
            redis_channel_prefix: raw.redis_channel_prefix.filter(|p| !p.is_empty()),
            redis_stream_max_len: raw.redis_stream_max_len,
            redis_url: raw
                .redis_event_url
                .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned()),
            kafka_bootstrap_servers: raw
                .kafka_bootstrap_servers
                .unwrap_or_else(|| "127.0.0.1:9092".to_owned()),
            kafka_consumer_group: raw
                .kafka_consumer_group
                .unwrap_or_else(|| "event-bus".to_owned()),
            kafka_linger: Duration::from_millis(raw.kafka_linger_ms.unwrap_or(5)),
            kafka_batch_size: raw.kafka_batch_size.unwrap_or(1_000_000).max(1),
            kafka_enable_idempotence: raw.kafka_enable_idempotence.unwrap_or(true),
            kafka_topic_partitions: raw.kafka_topic_partitions.unwrap_or(3).max(1),
            kafka_replication_factor: raw.kafka_replication_factor.unwrap_or(1).max(1),
            kafka_session_timeout: Duration::from_millis(
                raw.kafka_session_timeout_ms.unwrap_or(6000).max(1),
            ),
            kafka_max_poll_interval: Duration::from_millis(
                raw.kafka_max_poll_interval_ms.unwrap_or(300_000).max(1),
            ),
            rabbitmq_url: raw
                .rabbitmq_url
                .unwrap_or_else(|| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned()),
            rabbitmq_queue_expiry: raw
                .rabbitmq_queue_expires_seconds
                .map(|seconds| Duration::from_secs(seconds.max(1))),
            gcp_project_id: raw
                .gcp_project_id
                .unwrap_or_else(|| "local-project".to_owned()),
            pubsub_emulator_host: raw.pubsub_emulator_host.filter(|h| !h.is_empty()),
            event_store_snapshot_interval: raw.event_store_snapshot_interval.unwrap_or(100),
            event_store_ttl_days: raw.event_store_ttl_days,
            database_url: raw
                .database_url
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned()),
            metrics_port: raw.event_bus_metrics_port,
        })
    }

    /// Topic and subscription names under these prefixes.
    pub fn topic_names(&self) -> TopicNames {
        TopicNames::new(&self.topic_prefix, &self.subscription_prefix)
            .with_dead_letter_topic(&self.dead_letter_topic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_select_the_memory_bus() {
        let settings = BusSettings::from_vars([("UNRELATED", "x")]).unwrap();
        assert_eq!(settings, BusSettings::default());
        assert_eq!(settings.bus_type, BusType::Memory);
        assert_eq!(settings.dead_letter_topic, "events-dead-letter");
        assert_eq!(settings.dead_letter_max_retries, 5);
    }

    #[test]
    fn variables_override_defaults() {
        let settings = BusSettings::from_vars([
            ("EVENT_BUS_TYPE", "Kafka"),
            ("EVENT_BUS_TOPIC_PREFIX", "voice"),
            ("EVENT_BUS_ENABLE_ORDERING", "true"),
            ("EVENT_BUS_ENABLE_BATCHING", "false"),
            ("DEAD_LETTER_MAX_RETRIES", "3"),
            ("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092"),
            ("KAFKA_LINGER_MS", "20"),
            ("KAFKA_BATCH_SIZE", "65536"),
            ("KAFKA_ENABLE_IDEMPOTENCE", "false"),
            ("PUBSUB_EMULATOR_HOST", "127.0.0.1:8085"),
        ])
        .unwrap();
        assert_eq!(settings.bus_type, BusType::Kafka);
        assert_eq!(
            settings.topic_names().topic("user.registered"),
            "voice-user-registered"
        );
        assert_eq!(settings.subscription_prefix, "voice");
        assert_eq!(settings.dead_letter_topic, "voice-dead-letter");
        assert!(settings.enable_ordering);
        assert!(!settings.enable_batching);
        assert_eq!(settings.dead_letter_max_retries, 3);
        assert_eq!(settings.kafka_bootstrap_servers, "127.0.0.1:19092");
        assert_eq!(settings.kafka_linger, Duration::from_millis(20));
        assert_eq!(settings.kafka_batch_size, 65_536);
        assert!(!settings.kafka_enable_idempotence);
        assert_eq!(
            settings.pubsub_emulator_host.as_deref(),
            Some("127.0.0.1:8085")
        );
    }

    #[test]
    fn event_store_settings_have_defaults_and_overrides() {
        let defaults = BusSettings::default();
        assert_eq!(defaults.event_store_snapshot_interval, 100);
        assert_eq!(defaults.event_store_ttl_days, None);
        assert_eq!(
            defaults.database_url,
            "postgres://postgres@127.0.0.1:5432/postgres"
        );
        let settings = BusSettings::from_vars([
            ("EVENT_STORE_SNAPSHOT_INTERVAL", "50"),
            ("EVENT_STORE_TTL_DAYS", "30"),
            ("DATABASE_URL", "postgres://app@127.0.0.1:5433/events"),
        ])
        .unwrap();
        assert_eq!(settings.event_store_snapshot_interval, 50);
        assert_eq!(settings.event_store_ttl_days, Some(30));
        assert_eq!(
            settings.database_url,
            "postgres://app@127.0.0.1:5433/events"
        );
    }

    /// Variable names in the first column of the README's tables.
    fn readme_variables() -> std::collections::BTreeSet<String> {
        include_str!("../../README.md")
            .lines()
            .filter_map(|line| line.strip_prefix("| `"))
            .filter_map(|rest| rest.split_once('`'))
            .map(|(name, _)| name.to_owned())
            .filter(|name| {
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            })
            .collect()
    }

    #[test]
    fn the_readme_documents_exactly_the_variables() {
        let listed: std::collections::BTreeSet<String> =
            VARIABLES.iter().map(|v| (*v).to_owned()).collect();
        assert_eq!(listed.len(), VARIABLES.len(), "a variable is listed twice");
        assert_eq!(readme_variables(), listed);
    }

    #[test]
    fn every_setting_is_read_from_its_listed_variable() {
        let settings = BusSettings::from_vars([
            ("EVENT_BUS_METRICS_PORT", "9464"),
            ("REDIS_STREAM_MAX_LEN", "1000"),
            ("RABBITMQ_QUEUE_EXPIRES_SECONDS", "60"),
        ])
        .unwrap();
        assert_eq!(settings.metrics_port, Some(9464));
        assert_eq!(settings.redis_stream_max_len, Some(1000));
        assert_eq!(
            settings.rabbitmq_queue_expiry,
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn an_unknown_bus_type_names_the_options() {
        let error = BusSettings::from_vars([("EVENT_BUS_TYPE", "nats")]).unwrap_err();
        assert!(matches!(error, ConfigError::UnknownBusType(ref v) if v == "nats"));
        assert_eq!(
            error.to_string(),
            "unknown EVENT_BUS_TYPE `nats`; expected one of: memory, redis, kafka, rabbitmq, pubsub"
        );
    }

    #[test]
    fn a_malformed_number_is_a_typed_error() {
        let error = BusSettings::from_vars([("DEAD_LETTER_MAX_RETRIES", "many")]).unwrap_err();
        assert!(matches!(error, ConfigError::Source(_)), "{error}");
    }

    #[test]
    fn a_file_is_overridden_by_variables() {
        let dir = std::env::temp_dir().join(format!("event-bus-config-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("bus.toml");
        std::fs::write(
            &file,
            "event_bus_topic_prefix = \"from-file\"\ndead_letter_max_retries = 9\n",
        )
        .unwrap();
        let settings = BusSettings::load(
            Some(&file),
            Some(HashMap::from([(
                "DEAD_LETTER_MAX_RETRIES".to_owned(),
                "2".to_owned(),
            )])),
        )
        .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(settings.topic_prefix, "from-file");
        assert_eq!(settings.dead_letter_max_retries, 2);
    }
}
