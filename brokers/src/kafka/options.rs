//! How the Kafka backend connects, batches and names its clients, from its own variables.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use event_bus_core::{BusSettings, ConfigError, TopologyMode};
use rdkafka::ClientConfig;
use serde::Deserialize;

/// The variables the Kafka backend reads.
pub const VARIABLES: &[&str] = &[
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_CONSUMER_GROUP",
    "KAFKA_LINGER_MS",
    "KAFKA_BATCH_SIZE",
    "KAFKA_ENABLE_IDEMPOTENCE",
    "KAFKA_TOPIC_PARTITIONS",
    "KAFKA_REPLICATION_FACTOR",
    "KAFKA_SESSION_TIMEOUT_MS",
    "KAFKA_MAX_POLL_INTERVAL_MS",
];

#[derive(Deserialize)]
struct Variables {
    kafka_bootstrap_servers: Option<String>,
    kafka_consumer_group: Option<String>,
    kafka_linger_ms: Option<u64>,
    kafka_batch_size: Option<usize>,
    kafka_enable_idempotence: Option<bool>,
    kafka_topic_partitions: Option<i32>,
    kafka_replication_factor: Option<i32>,
    kafka_session_timeout_ms: Option<u64>,
    kafka_max_poll_interval_ms: Option<u64>,
}

/// Longest a connect waits for the cluster's metadata before it reports the brokers unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often stored offsets of settled deliveries are committed in the background.
const AUTO_COMMIT_INTERVAL: Duration = Duration::from_millis(500);
/// Longest pause between attempts to reach a broker that went away, so a client is back soon
/// after the broker (librdkafka's default grows to 10 s).
const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Room for what a record adds to the bytes the bus counts: the record batch header, each
/// record's framing, and the backend's retry headers on a retry topic.
const RECORD_FRAMING_BYTES: usize = 16 * 1024;
/// Variables named `KAFKA_PROPERTY_{NAME}` set the librdkafka property `name` (underscores as
/// dots, in lower case): `KAFKA_PROPERTY_SECURITY_PROTOCOL=SASL_SSL` is `security.protocol`.
pub const PROPERTY_PREFIX: &str = "KAFKA_PROPERTY_";
/// Parts of a property name that mark its value as a secret, never printed.
const SECRET_PROPERTY_PARTS: &[&str] = &["password", "secret", "key", "token", "jaas"];
/// Largest `message.max.bytes` librdkafka accepts.
const LIBRDKAFKA_MAX_MESSAGE_BYTES: usize = 1_000_000_000;

/// Connection, producer and topic settings of the Kafka backend. `Debug` hides the values of
/// secret properties.
#[derive(Clone)]
pub struct KafkaOptions {
    /// `bootstrap.servers`, such as `127.0.0.1:9092`.
    pub bootstrap_servers: String,
    /// `client.id` of the producer and every consumer.
    pub client_id: String,
    /// `linger.ms`: how long the producer waits to fill a batch.
    pub linger: Duration,
    /// `batch.size` in bytes.
    pub batch_size: usize,
    /// `enable.idempotence`: no duplicates or reordering when the producer retries.
    pub enable_idempotence: bool,
    /// Partitions of topics the backend creates.
    pub partitions: i32,
    /// Replication factor of topics the backend creates.
    pub replication_factor: i32,
    /// `session.timeout.ms` of consumers: a silent member leaves its group after this long.
    pub session_timeout: Duration,
    /// `max.poll.interval.ms`: a member that asks for no record this long leaves its group;
    /// also how long the group waits for members to rejoin during a rebalance.
    pub max_poll_interval: Duration,
    /// `message.timeout.ms`: how long a publish is tried before it fails.
    pub delivery_timeout: Duration,
    /// How long connecting waits for the cluster before failing.
    pub connect_timeout: Duration,
    /// The bus's limit (`EVENT_BUS_MAX_MESSAGE_BYTES`): a larger message is refused with
    /// `BusError::MessageTooLarge` before it reaches the producer; the producer's
    /// `message.max.bytes` and the created topics' `max.message.bytes` leave room for it.
    pub max_message_bytes: usize,
    /// Any other librdkafka property (TLS, SASL, ...), set on every client after the bus's
    /// own, so it can override them; an unknown name fails `connect`.
    pub properties: BTreeMap<String, String>,
    /// `EVENT_BUS_TOPOLOGY`: under `existing` the backend creates no topic (it checks that the
    /// topics it uses exist) and asks the broker to create none automatically.
    pub topology: TopologyMode,
}

impl fmt::Debug for KafkaOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let properties: BTreeMap<&str, &str> = self
            .properties
            .iter()
            .map(|(name, value)| {
                let shown = if is_secret(name) {
                    "***"
                } else {
                    value.as_str()
                };
                (name.as_str(), shown)
            })
            .collect();
        f.debug_struct("KafkaOptions")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("client_id", &self.client_id)
            .field("linger", &self.linger)
            .field("batch_size", &self.batch_size)
            .field("enable_idempotence", &self.enable_idempotence)
            .field("partitions", &self.partitions)
            .field("replication_factor", &self.replication_factor)
            .field("session_timeout", &self.session_timeout)
            .field("max_poll_interval", &self.max_poll_interval)
            .field("delivery_timeout", &self.delivery_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("properties", &properties)
            .field("topology", &self.topology)
            .finish()
    }
}

/// Whether a librdkafka property's value is a secret (a password, key or token).
fn is_secret(name: &str) -> bool {
    SECRET_PROPERTY_PARTS.iter().any(|part| name.contains(part))
}

impl KafkaOptions {
    /// Options from the `KAFKA_*` variables: batching off (`EVENT_BUS_ENABLE_BATCHING=false`)
    /// means no linger; a publish is tried for `EVENT_BUS_ACK_DEADLINE_SECONDS`.
    pub fn from_settings(settings: &BusSettings) -> Result<Self, ConfigError> {
        let vars: Variables = settings.source.read()?;
        Ok(Self {
            bootstrap_servers: vars
                .kafka_bootstrap_servers
                .unwrap_or_else(|| "127.0.0.1:9092".to_owned()),
            client_id: vars
                .kafka_consumer_group
                .unwrap_or_else(|| "event-bus".to_owned()),
            linger: if settings.enable_batching {
                Duration::from_millis(vars.kafka_linger_ms.unwrap_or(5))
            } else {
                Duration::ZERO
            },
            batch_size: vars.kafka_batch_size.unwrap_or(1_000_000).max(1),
            enable_idempotence: vars.kafka_enable_idempotence.unwrap_or(true),
            partitions: vars.kafka_topic_partitions.unwrap_or(3).max(1),
            replication_factor: vars.kafka_replication_factor.unwrap_or(1).max(1),
            session_timeout: Duration::from_millis(
                vars.kafka_session_timeout_ms.unwrap_or(6000).max(1),
            ),
            max_poll_interval: Duration::from_millis(
                vars.kafka_max_poll_interval_ms.unwrap_or(300_000).max(1),
            ),
            delivery_timeout: settings.ack_deadline,
            connect_timeout: CONNECT_TIMEOUT,
            max_message_bytes: settings.max_message_bytes,
            properties: settings
                .source
                .with_prefix(PROPERTY_PREFIX)
                .into_iter()
                .map(|(name, value)| (name.replace('_', "."), value))
                .collect(),
            topology: settings.topology,
        })
    }

    /// `config` with the user's properties set last.
    fn with_properties(&self, mut config: ClientConfig) -> ClientConfig {
        for (name, value) in &self.properties {
            config.set(name, value);
        }
        config
    }

    /// `message.max.bytes` of the clients and `max.message.bytes` of created topics: the
    /// bus's limit plus the record framing, so whatever the bus accepts goes through.
    pub(super) fn record_size_limit(&self) -> usize {
        self.max_message_bytes
            .saturating_add(RECORD_FRAMING_BYTES)
            .min(LIBRDKAFKA_MAX_MESSAGE_BYTES)
    }

    fn common(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", &self.client_id)
            .set("message.max.bytes", self.record_size_limit().to_string())
            .set(
                "reconnect.backoff.max.ms",
                RECONNECT_BACKOFF_MAX.as_millis().to_string(),
            )
            .set("log_level", "3");
        if !self.topology.creates() {
            config.set("allow.auto.create.topics", "false");
        }
        self.with_properties(config)
    }

    /// Settings of the producer: every publish waits for all in-sync replicas.
    pub(super) fn producer_config(&self) -> ClientConfig {
        let mut config = self.common();
        config
            .set("acks", "all")
            .set("linger.ms", self.linger.as_millis().to_string())
            .set("batch.size", self.batch_size.to_string())
            .set("enable.idempotence", self.enable_idempotence.to_string())
            .set(
                "message.timeout.ms",
                self.delivery_timeout.as_millis().max(1).to_string(),
            );
        self.with_properties(config)
    }

    /// Settings of one consumer-group member: offsets are stored by the backend only for the
    /// settled prefix of each partition, and committed from there; a new group starts at the
    /// earliest offset.
    pub(super) fn consumer_config(&self, group: &str) -> ClientConfig {
        let mut config = self.common();
        let session = self.session_timeout.as_millis().max(1);
        config
            .set("group.id", group)
            .set("enable.auto.commit", "true")
            .set(
                "auto.commit.interval.ms",
                AUTO_COMMIT_INTERVAL.as_millis().to_string(),
            )
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("session.timeout.ms", session.to_string())
            .set("heartbeat.interval.ms", (session / 3).max(1).to_string())
            .set(
                "max.poll.interval.ms",
                self.max_poll_interval.as_millis().max(session).to_string(),
            );
        self.with_properties(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_variables_and_the_bus_wide_batching_switch() {
        let settings = BusSettings::from_vars([
            ("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092"),
            ("KAFKA_LINGER_MS", "20"),
            ("KAFKA_BATCH_SIZE", "65536"),
            ("KAFKA_ENABLE_IDEMPOTENCE", "false"),
        ])
        .unwrap();
        let options = KafkaOptions::from_settings(&settings).unwrap();
        assert_eq!(options.bootstrap_servers, "127.0.0.1:19092");
        assert_eq!(options.linger, Duration::from_millis(20));
        assert_eq!(options.batch_size, 65_536);
        assert!(!options.enable_idempotence);
        assert_eq!(options.partitions, 3);

        let unbatched = BusSettings::from_vars([
            ("KAFKA_LINGER_MS", "20"),
            ("EVENT_BUS_ENABLE_BATCHING", "false"),
        ])
        .unwrap();
        assert_eq!(
            KafkaOptions::from_settings(&unbatched).unwrap().linger,
            Duration::ZERO
        );
    }

    #[test]
    fn a_malformed_number_is_a_typed_error() {
        let settings = BusSettings::from_vars([("KAFKA_TOPIC_PARTITIONS", "lots")]).unwrap();
        assert!(matches!(
            KafkaOptions::from_settings(&settings),
            Err(ConfigError::Source(_))
        ));
    }

    #[test]
    fn kafka_property_variables_reach_librdkafka_and_secrets_stay_out_of_debug() {
        let settings = BusSettings::from_vars([
            ("KAFKA_PROPERTY_SECURITY_PROTOCOL", "SASL_SSL"),
            ("KAFKA_PROPERTY_SASL_MECHANISM", "SCRAM-SHA-512"),
            ("KAFKA_PROPERTY_SASL_USERNAME", "bus"),
            ("KAFKA_PROPERTY_SASL_PASSWORD", "kafka-secret-5e2"),
            ("KAFKA_PROPERTY_ACKS", "1"),
        ])
        .unwrap();
        let options = KafkaOptions::from_settings(&settings).unwrap();
        // librdkafka's own view of the configuration, not the bus's map.
        let native = options.producer_config().create_native_config().unwrap();
        assert_eq!(native.get("security.protocol").unwrap(), "sasl_ssl");
        assert_eq!(native.get("sasl.mechanisms").unwrap(), "SCRAM-SHA-512");
        assert_eq!(native.get("sasl.username").unwrap(), "bus");
        assert_eq!(native.get("acks").unwrap(), "1", "the user's value wins");
        let consumer = options.consumer_config("g").create_native_config().unwrap();
        assert_eq!(consumer.get("security.protocol").unwrap(), "sasl_ssl");
        let shown = format!("{options:?}");
        assert!(!shown.contains("kafka-secret-5e2"), "{shown}");
        assert!(shown.contains(r#""sasl.password": "***""#), "{shown}");
    }

    #[test]
    fn an_unknown_kafka_property_is_refused_by_name() {
        let settings = BusSettings::from_vars([("KAFKA_PROPERTY_NO_SUCH_THING", "1")]).unwrap();
        let options = KafkaOptions::from_settings(&settings).unwrap();
        let error = options
            .producer_config()
            .create_native_config()
            .err()
            .expect("librdkafka knows no such property")
            .to_string();
        assert!(error.contains("no.such.thing"), "{error}");
    }
}
