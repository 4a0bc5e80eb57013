//! Bus-wide settings from the environment (and an optional file), with the `config` crate.
//! Each backend reads its own variables from the same [`SettingsSource`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::envelope::ContentMode;
use crate::topics::TopicNames;
use crate::transport::{
    DEFAULT_DEAD_LETTER_SUBSCRIPTION, DEFAULT_HANDLER_TIMEOUT, DEFAULT_MAX_IN_FLIGHT, TopologyMode,
};

/// The bus-wide environment variables (the bus, logging and metrics), as the README's
/// configuration table documents them. Backends, the event store and the sagas list their own.
pub const VARIABLES: &[&str] = &[
    "EVENT_BUS_TYPE",
    "EVENT_BUS_TOPIC_PREFIX",
    "KAFKA_TOPIC_PREFIX",
    "EVENT_BUS_SUBSCRIPTION_PREFIX",
    "EVENT_BUS_ENABLE_ORDERING",
    "EVENT_BUS_ENABLE_BATCHING",
    "EVENT_BUS_CLOUDEVENTS_MODE",
    "EVENT_BUS_TOPOLOGY",
    "DEAD_LETTER_TOPIC",
    "DEAD_LETTER_SUBSCRIPTION",
    "DEAD_LETTER_MAX_RETRIES",
    "DEAD_LETTER_MAX_REDRIVES",
    "EVENT_BUS_MAX_MESSAGE_BYTES",
    "EVENT_BUS_IDEMPOTENCY_TTL_SECONDS",
    "EVENT_BUS_IDEMPOTENCY_MAX_KEYS",
    "EVENT_BUS_DEDUP_STORE",
    "EVENT_BUS_ACK_DEADLINE_SECONDS",
    "WORKER_TIMEOUT",
    "MAX_CONCURRENT_MESSAGES",
    "EVENT_BUS_METRICS_PORT",
    "EVENT_BUS_LOG_FORMAT",
    "RUST_LOG",
];

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `EVENT_BUS_TYPE` names no backend this build knows.
    #[error("unknown EVENT_BUS_TYPE `{name}`; this build has: {available}")]
    UnknownBackend {
        /// The requested backend.
        name: String,
        /// Backends this binary has, comma-separated.
        available: String,
    },
    /// The backend exists but was not compiled into this binary.
    #[error(
        "EVENT_BUS_TYPE `{name}` is not available in this build (enable cargo feature `{feature}` of event-bus-brokers); this build has: {available}"
    )]
    BackendNotCompiled {
        /// The requested backend.
        name: String,
        /// The cargo feature that compiles it in.
        feature: &'static str,
        /// Backends this binary has, comma-separated.
        available: String,
    },
    /// A variable has a value its reader does not know.
    #[error("{variable}=`{value}` is not valid; expected {expected}")]
    InvalidValue {
        /// The variable.
        variable: &'static str,
        /// Its value.
        value: String,
        /// What it may be.
        expected: &'static str,
    },
    /// A source could not be read or a value has the wrong type.
    #[error("invalid event bus settings: {0}")]
    Source(#[from] config::ConfigError),
}

/// Every variable the settings were read from (the file, then the environment), for the
/// backend and the other crates to read their own. `Debug` shows the names only, never a value
/// (values may hold passwords).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SettingsSource(BTreeMap<String, String>);

impl SettingsSource {
    /// The value of a variable (names are case-insensitive), when set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    /// Every variable whose name starts with `prefix` (case-insensitive): the rest of its
    /// name in lower case, and its value.
    pub fn with_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        let prefix = prefix.to_ascii_lowercase();
        let mut found: Vec<(String, String)> = self
            .0
            .iter()
            .filter_map(|(name, value)| {
                let rest = name.strip_prefix(&prefix)?;
                (!rest.is_empty()).then(|| (rest.to_owned(), value.clone()))
            })
            .collect();
        found.sort();
        found
    }

    /// Deserializes a settings struct whose fields are variable names in lower case, parsing
    /// numbers and booleans.
    pub fn read<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        let environment = config::Environment::default()
            .try_parsing(true)
            .source(Some(self.0.clone().into_iter().collect()));
        Ok(config::Config::builder()
            .add_source(environment)
            .build()?
            .try_deserialize()?)
    }

    fn load(
        file: Option<&Path>,
        vars: Option<HashMap<String, String>>,
    ) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            builder = builder.add_source(config::File::from(path).required(true));
        }
        let environment = config::Environment::default().source(vars);
        let collected: HashMap<String, config::Value> =
            builder.add_source(environment).build()?.try_deserialize()?;
        Ok(Self(
            collected
                .into_iter()
                .filter_map(|(name, value)| {
                    Some((name.to_ascii_lowercase(), value.into_string().ok()?))
                })
                .collect(),
        ))
    }
}

impl fmt::Debug for SettingsSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// What the bus reads from its environment; a backend's own settings come from
/// [`source`](BusSettings::source).
#[derive(Clone, Debug, PartialEq)]
pub struct BusSettings {
    /// `EVENT_BUS_TYPE`: the backend's name; `None` selects the default backend.
    pub backend: Option<String>,
    /// `EVENT_BUS_TOPIC_PREFIX` (default `events`).
    pub topic_prefix: String,
    /// `EVENT_BUS_SUBSCRIPTION_PREFIX` (default: the topic prefix).
    pub subscription_prefix: String,
    /// `EVENT_BUS_ENABLE_ORDERING`: keep per-aggregate order (default false).
    pub enable_ordering: bool,
    /// `EVENT_BUS_ENABLE_BATCHING`: let backends batch publishes (default true).
    pub enable_batching: bool,
    /// `EVENT_BUS_CLOUDEVENTS_MODE`: the CloudEvents content mode events are published in,
    /// `structured` (default) or `binary`; received events are read in either.
    pub content_mode: ContentMode,
    /// `EVENT_BUS_TOPOLOGY`: `create` (default) lets the bus create the topics, queues,
    /// subscriptions and groups it uses; `existing` makes it use only what exists (least
    /// privilege; `eventbus setup` creates it beforehand).
    pub topology: TopologyMode,
    /// `DEAD_LETTER_TOPIC` (default `{topic prefix}-dead-letter`).
    pub dead_letter_topic: String,
    /// `DEAD_LETTER_SUBSCRIPTION`: the consumer group that keeps dead letters for
    /// `eventbus dlq` (default `eventbus-dead-letters`).
    pub dead_letter_subscription: String,
    /// `DEAD_LETTER_MAX_RETRIES`: delivery attempts before dead-lettering (default 5).
    pub dead_letter_max_retries: u32,
    /// `DEAD_LETTER_MAX_REDRIVES`: how often one dead letter may be sent back to its topic
    /// before it is parked for good (default 5).
    pub dead_letter_max_redrives: u32,
    /// `EVENT_BUS_MAX_MESSAGE_BYTES`: larger messages are refused or dead-lettered (default 1 MiB).
    pub max_message_bytes: usize,
    /// `EVENT_BUS_IDEMPOTENCY_TTL_SECONDS`: how long handled keys are remembered (default 1 day).
    pub idempotency_ttl: Duration,
    /// `EVENT_BUS_IDEMPOTENCY_MAX_KEYS`: the most keys the in-process dedup store keeps; past
    /// it the least used are forgotten early (default 100,000).
    pub idempotency_max_keys: u64,
    /// `EVENT_BUS_DEDUP_STORE`: the name of the store idempotency keys are kept in, in lower
    /// case (event-bus-brokers knows the names); `None` (unset): the backend's own store where
    /// it has one, process memory elsewhere.
    pub dedup_store: Option<String>,
    /// `EVENT_BUS_ACK_DEADLINE_SECONDS`: a delivery unsettled this long is redelivered by
    /// backends that track it themselves (default 30).
    pub ack_deadline: Duration,
    /// `WORKER_TIMEOUT`: a handler still running after this many seconds is cancelled and its
    /// attempt fails, retryably (default 300; `0`: no limit).
    pub handler_timeout: Option<Duration>,
    /// `MAX_CONCURRENT_MESSAGES`: deliveries one subscription handles at once (default 16).
    pub max_concurrent_messages: usize,
    /// `EVENT_BUS_METRICS_PORT`: serve Prometheus metrics on `127.0.0.1` at this port (feature
    /// `prometheus`; default: no exporter).
    pub metrics_port: Option<u16>,
    /// Every variable read, for the backend's and other crates' own settings.
    pub source: SettingsSource,
}

#[derive(Default, Deserialize)]
struct RawSettings {
    event_bus_type: Option<String>,
    event_bus_topic_prefix: Option<String>,
    kafka_topic_prefix: Option<String>,
    event_bus_subscription_prefix: Option<String>,
    event_bus_enable_ordering: Option<bool>,
    event_bus_enable_batching: Option<bool>,
    event_bus_cloudevents_mode: Option<ContentMode>,
    event_bus_topology: Option<String>,
    dead_letter_topic: Option<String>,
    dead_letter_subscription: Option<String>,
    dead_letter_max_retries: Option<u32>,
    dead_letter_max_redrives: Option<u32>,
    event_bus_max_message_bytes: Option<usize>,
    event_bus_idempotency_ttl_seconds: Option<u64>,
    event_bus_idempotency_max_keys: Option<u64>,
    event_bus_dedup_store: Option<String>,
    event_bus_ack_deadline_seconds: Option<u64>,
    worker_timeout: Option<u64>,
    max_concurrent_messages: Option<usize>,
    event_bus_metrics_port: Option<u16>,
}

impl Default for BusSettings {
    fn default() -> Self {
        Self::from_raw(RawSettings::default(), SettingsSource::default())
            .expect("the defaults are valid")
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
        let source = SettingsSource::load(file, vars)?;
        let raw: RawSettings = source.read()?;
        Self::from_raw(raw, source)
    }

    fn from_raw(raw: RawSettings, source: SettingsSource) -> Result<Self, ConfigError> {
        let on_kafka = raw
            .event_bus_type
            .as_deref()
            .is_some_and(|name| name.trim().eq_ignore_ascii_case("kafka"));
        let kafka_prefix = raw
            .kafka_topic_prefix
            .filter(|prefix| on_kafka && !prefix.is_empty());
        let topic_prefix = match (raw.event_bus_topic_prefix, kafka_prefix) {
            (Some(prefix), Some(kafka)) if prefix != kafka => {
                return Err(ConfigError::InvalidValue {
                    variable: "KAFKA_TOPIC_PREFIX",
                    value: kafka,
                    expected: "unset, or the same as EVENT_BUS_TOPIC_PREFIX (on Kafka both name the topic prefix)",
                });
            }
            (Some(prefix), _) | (None, Some(prefix)) => prefix,
            (None, None) => "events".to_owned(),
        };
        let topology = match raw.event_bus_topology.as_deref().map(str::trim) {
            None | Some("") => TopologyMode::default(),
            Some(value) => value.parse().map_err(|()| ConfigError::InvalidValue {
                variable: "EVENT_BUS_TOPOLOGY",
                value: value.to_owned(),
                expected: "`create` or `existing`",
            })?,
        };
        let dedup_store = raw
            .event_bus_dedup_store
            .map(|name| name.trim().to_ascii_lowercase())
            .filter(|name| !name.is_empty());
        Ok(Self {
            backend: raw
                .event_bus_type
                .map(|name| name.trim().to_ascii_lowercase())
                .filter(|name| !name.is_empty()),
            subscription_prefix: raw
                .event_bus_subscription_prefix
                .unwrap_or_else(|| topic_prefix.clone()),
            dead_letter_topic: raw
                .dead_letter_topic
                .unwrap_or_else(|| format!("{topic_prefix}-dead-letter")),
            dead_letter_subscription: raw
                .dead_letter_subscription
                .filter(|name| !name.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_DEAD_LETTER_SUBSCRIPTION.to_owned()),
            topic_prefix,
            enable_ordering: raw.event_bus_enable_ordering.unwrap_or(false),
            enable_batching: raw.event_bus_enable_batching.unwrap_or(true),
            content_mode: raw.event_bus_cloudevents_mode.unwrap_or_default(),
            topology,
            dead_letter_max_retries: raw.dead_letter_max_retries.unwrap_or(5).max(1),
            dead_letter_max_redrives: raw.dead_letter_max_redrives.unwrap_or(5),
            max_message_bytes: raw.event_bus_max_message_bytes.unwrap_or(1024 * 1024),
            idempotency_max_keys: raw
                .event_bus_idempotency_max_keys
                .unwrap_or(crate::idempotency::DEFAULT_MAX_KEYS)
                .max(1),
            idempotency_ttl: Duration::from_secs(
                raw.event_bus_idempotency_ttl_seconds.unwrap_or(86_400),
            ),
            ack_deadline: Duration::from_secs(
                raw.event_bus_ack_deadline_seconds.unwrap_or(30).max(1),
            ),
            handler_timeout: match raw.worker_timeout {
                Some(0) => None,
                seconds => Some(seconds.map_or(DEFAULT_HANDLER_TIMEOUT, Duration::from_secs)),
            },
            max_concurrent_messages: raw
                .max_concurrent_messages
                .unwrap_or(DEFAULT_MAX_IN_FLIGHT)
                .max(1),
            dedup_store,
            metrics_port: raw.event_bus_metrics_port,
            source,
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
    fn kafka_topic_prefix_names_the_topic_prefix_on_kafka() {
        let kafka = BusSettings::from_vars([
            ("EVENT_BUS_TYPE", "kafka"),
            ("KAFKA_TOPIC_PREFIX", "orders"),
        ])
        .unwrap();
        assert_eq!(kafka.topic_prefix, "orders");
        assert_eq!(kafka.dead_letter_topic, "orders-dead-letter");
        let redis = BusSettings::from_vars([
            ("EVENT_BUS_TYPE", "redis"),
            ("KAFKA_TOPIC_PREFIX", "orders"),
        ])
        .unwrap();
        assert_eq!(redis.topic_prefix, "events", "only Kafka reads it");
        let both = BusSettings::from_vars([
            ("EVENT_BUS_TYPE", "kafka"),
            ("EVENT_BUS_TOPIC_PREFIX", "orders"),
            ("KAFKA_TOPIC_PREFIX", "orders"),
        ])
        .unwrap();
        assert_eq!(both.topic_prefix, "orders");
        let error = BusSettings::from_vars([
            ("EVENT_BUS_TYPE", "kafka"),
            ("EVENT_BUS_TOPIC_PREFIX", "orders"),
            ("KAFKA_TOPIC_PREFIX", "billing"),
        ])
        .unwrap_err()
        .to_string();
        assert!(error.contains("KAFKA_TOPIC_PREFIX"), "{error}");
    }

    #[test]
    fn defaults_select_the_default_backend() {
        let settings = BusSettings::from_vars([("UNRELATED", "x")]).unwrap();
        assert_eq!(settings.backend, None);
        assert_eq!(settings.dead_letter_topic, "events-dead-letter");
        assert_eq!(settings.dead_letter_max_retries, 5);
        assert_eq!(settings.source.get("unrelated"), Some("x"));
        assert_eq!(settings.handler_timeout, Some(Duration::from_secs(300)));
        assert_eq!(settings.max_concurrent_messages, 16);
        assert_eq!(settings.content_mode, ContentMode::Structured);
    }

    #[test]
    fn the_content_mode_is_read_by_name() {
        let settings = BusSettings::from_vars([("EVENT_BUS_CLOUDEVENTS_MODE", "binary")]).unwrap();
        assert_eq!(settings.content_mode, ContentMode::Binary);
        let error = BusSettings::from_vars([("EVENT_BUS_CLOUDEVENTS_MODE", "both")]).unwrap_err();
        assert!(
            error.to_string().contains("event_bus_cloudevents_mode"),
            "{error}"
        );
    }

    #[test]
    fn the_dedup_store_is_read_by_name() {
        assert_eq!(BusSettings::default().dedup_store, None);
        let settings = BusSettings::from_vars([("EVENT_BUS_DEDUP_STORE", " Shared ")]).unwrap();
        assert_eq!(settings.dedup_store.as_deref(), Some("shared"));
    }

    #[test]
    fn delivery_attempts_and_the_redrive_cap_are_set_apart() {
        let settings = BusSettings::from_vars([("DEAD_LETTER_MAX_RETRIES", "2")]).unwrap();
        assert_eq!(
            (
                settings.dead_letter_max_retries,
                settings.dead_letter_max_redrives
            ),
            (2, 5)
        );
        let settings = BusSettings::from_vars([("DEAD_LETTER_MAX_REDRIVES", "9")]).unwrap();
        assert_eq!(
            (
                settings.dead_letter_max_retries,
                settings.dead_letter_max_redrives
            ),
            (5, 9)
        );
    }

    #[test]
    fn the_seeds_worker_timeout_and_concurrency_are_read() {
        let settings =
            BusSettings::from_vars([("WORKER_TIMEOUT", "45"), ("MAX_CONCURRENT_MESSAGES", "4")])
                .unwrap();
        assert_eq!(settings.handler_timeout, Some(Duration::from_secs(45)));
        assert_eq!(settings.max_concurrent_messages, 4);
        let unlimited = BusSettings::from_vars([("WORKER_TIMEOUT", "0")]).unwrap();
        assert_eq!(unlimited.handler_timeout, None);
    }

    #[test]
    fn variables_override_defaults() {
        let settings = BusSettings::from_vars([
            ("EVENT_BUS_TYPE", " Carrier-Pigeon "),
            ("EVENT_BUS_TOPIC_PREFIX", "voice"),
            ("EVENT_BUS_ENABLE_ORDERING", "true"),
            ("EVENT_BUS_ENABLE_BATCHING", "false"),
            ("DEAD_LETTER_MAX_RETRIES", "3"),
            ("EVENT_BUS_METRICS_PORT", "9464"),
        ])
        .unwrap();
        assert_eq!(settings.backend.as_deref(), Some("carrier-pigeon"));
        assert_eq!(
            settings.topic_names().topic("user.registered"),
            "voice-user-registered"
        );
        assert_eq!(settings.subscription_prefix, "voice");
        assert_eq!(settings.dead_letter_topic, "voice-dead-letter");
        assert!(settings.enable_ordering);
        assert!(!settings.enable_batching);
        assert_eq!(settings.dead_letter_max_retries, 3);
        assert_eq!(settings.metrics_port, Some(9464));
    }

    #[derive(Deserialize)]
    struct OwnSettings {
        my_backend_url: String,
        my_backend_partitions: Option<i32>,
        my_backend_flag: Option<bool>,
    }

    #[test]
    fn another_crate_reads_its_own_variables_from_the_source() {
        let settings = BusSettings::from_vars([
            ("MY_BACKEND_URL", "tcp://127.0.0.1:1"),
            ("MY_BACKEND_PARTITIONS", "7"),
            ("MY_BACKEND_FLAG", "true"),
        ])
        .unwrap();
        let own: OwnSettings = settings.source.read().unwrap();
        assert_eq!(own.my_backend_url, "tcp://127.0.0.1:1");
        assert_eq!(own.my_backend_partitions, Some(7));
        assert_eq!(own.my_backend_flag, Some(true));
    }

    #[test]
    fn debug_output_names_variables_but_never_shows_their_values() {
        let settings =
            BusSettings::from_vars([("MY_BACKEND_URL", "tcp://app:s3cret-pw@127.0.0.1:1")])
                .unwrap();
        let debug = format!("{settings:?}");
        assert!(debug.contains("my_backend_url"), "{debug}");
        assert!(!debug.contains("s3cret-pw"), "{debug}");
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
            "event_bus_topic_prefix = \"from-file\"\ndead_letter_max_retries = 9\nmy_backend_url = \"tcp://file\"\n",
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
        assert_eq!(settings.source.get("MY_BACKEND_URL"), Some("tcp://file"));
    }
}
