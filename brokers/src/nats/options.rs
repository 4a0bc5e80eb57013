//! How the NATS backend connects and what streams it creates: its own `NATS_*` variables, plus
//! the bus-wide values it depends on.

use std::time::Duration;

use event_bus_core::{BusSettings, TopologyMode};

/// The variables [`NatsOptions::from_vars`] reads.
pub const VARIABLES: &[&str] = &[
    "NATS_URL",
    "NATS_STREAM_STORAGE",
    "NATS_STREAM_REPLICAS",
    "NATS_STREAM_MAX_AGE_SECONDS",
    "NATS_TLS_CA_FILE",
];

/// Longest a connect waits for the server before it reports the URL unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a publish waits for its stream's acknowledgement, and a JetStream API call for its answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a stream keeps its messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamStorage {
    /// On disk: messages survive a server restart.
    File,
    /// In memory: faster, gone when the server stops.
    Memory,
}

/// Connection and stream settings of the NATS backend.
#[derive(Clone, PartialEq)]
pub struct NatsOptions {
    /// `NATS_URL`: one server URL, or several separated by commas (default
    /// `nats://127.0.0.1:4222`); credentials may be part of it (`nats://user:pass@host:4222`).
    pub url: String,
    /// `NATS_STREAM_STORAGE`: `file` (default) or `memory`, for streams the backend creates.
    pub storage: StreamStorage,
    /// `NATS_STREAM_REPLICAS`: replicas of streams the backend creates (default 1).
    pub replicas: usize,
    /// `NATS_STREAM_MAX_AGE_SECONDS`: messages older than this are removed from their stream;
    /// `None` (the default, or 0) keeps them until the stream is deleted.
    pub max_age: Option<Duration>,
    /// `EVENT_BUS_ACK_DEADLINE_SECONDS`: a delivery unsettled this long (a crashed member's)
    /// is delivered again; the consumers' ack wait.
    pub ack_wait: Duration,
    /// `EVENT_BUS_MAX_MESSAGE_BYTES`: connecting warns when the server's payload limit is lower.
    pub max_message_bytes: usize,
    /// How long connecting waits for the server.
    pub connect_timeout: Duration,
    /// How long a publish waits for its acknowledgement, and a JetStream request for its answer.
    pub request_timeout: Duration,
    /// `EVENT_BUS_TOPOLOGY`: whether missing streams and consumers are created.
    pub topology: TopologyMode,
    /// `NATS_TLS_CA_FILE`: PEM file of the CA that signed the server's certificate; set, the
    /// connection must be TLS (otherwise `tls://` URLs use the web's roots).
    pub tls_ca_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for NatsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsOptions")
            .field("url", &event_bus_core::redact::redacted_url(&self.url))
            .field("storage", &self.storage)
            .field("replicas", &self.replicas)
            .field("max_age", &self.max_age)
            .field("ack_wait", &self.ack_wait)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("topology", &self.topology)
            .field("tls_ca_file", &self.tls_ca_file)
            .finish()
    }
}

/// A `NATS_*` variable with a value the backend cannot use.
#[derive(Debug, thiserror::Error)]
#[error("invalid {variable} `{value}`: expected {expected}")]
pub struct NatsConfigError {
    /// The variable.
    pub variable: &'static str,
    /// Its value.
    pub value: String,
    /// What it should be.
    pub expected: &'static str,
}

impl NatsOptions {
    /// Options from `NATS_*` variables among `vars` (others are ignored) and the bus-wide
    /// ack deadline and message size limit of `bus`.
    pub fn from_vars<K: AsRef<str>, V: AsRef<str>>(
        vars: impl IntoIterator<Item = (K, V)>,
        bus: &BusSettings,
    ) -> Result<Self, NatsConfigError> {
        let mut options = Self {
            url: "nats://127.0.0.1:4222".to_owned(),
            storage: StreamStorage::File,
            replicas: 1,
            max_age: None,
            ack_wait: bus.ack_deadline,
            max_message_bytes: bus.max_message_bytes,
            connect_timeout: CONNECT_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
            topology: bus.topology,
            tls_ca_file: None,
        };
        for (name, value) in vars {
            let value = value.as_ref().trim();
            match name.as_ref() {
                "NATS_URL" if !value.is_empty() => options.url = value.to_owned(),
                "NATS_STREAM_STORAGE" => {
                    options.storage = match value.to_ascii_lowercase().as_str() {
                        "file" | "" => StreamStorage::File,
                        "memory" => StreamStorage::Memory,
                        _ => return Err(invalid("NATS_STREAM_STORAGE", value, "file or memory")),
                    }
                }
                "NATS_STREAM_REPLICAS" => {
                    options.replicas = value
                        .parse()
                        .ok()
                        .filter(|replicas| (1..=5).contains(replicas))
                        .ok_or_else(|| {
                            invalid("NATS_STREAM_REPLICAS", value, "a number from 1 to 5")
                        })?;
                }
                "NATS_STREAM_MAX_AGE_SECONDS" => {
                    let seconds: u64 = value.parse().map_err(|_| {
                        invalid("NATS_STREAM_MAX_AGE_SECONDS", value, "whole seconds")
                    })?;
                    options.max_age = (seconds > 0).then(|| Duration::from_secs(seconds));
                }
                "NATS_TLS_CA_FILE" if !value.is_empty() => {
                    options.tls_ca_file = Some(value.into());
                }
                _ => {}
            }
        }
        Ok(options)
    }

    /// Options from the `NATS_*` variables of the bus settings' source.
    pub fn from_settings(settings: &BusSettings) -> Result<Self, NatsConfigError> {
        let vars = VARIABLES
            .iter()
            .filter_map(|name| Some((*name, settings.source.get(name)?)));
        Self::from_vars(vars, settings)
    }

    /// The server URLs of [`url`](Self::url).
    pub(super) fn servers(&self) -> Vec<&str> {
        self.url
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .collect()
    }
}

fn invalid(variable: &'static str, value: &str, expected: &'static str) -> NatsConfigError {
    NatsConfigError {
        variable,
        value: value.to_owned(),
        expected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bus_wide_values() {
        let bus = BusSettings::from_vars([
            ("EVENT_BUS_ACK_DEADLINE_SECONDS", "7"),
            ("EVENT_BUS_MAX_MESSAGE_BYTES", "4096"),
        ])
        .unwrap();
        let options = NatsOptions::from_vars([("UNRELATED", "x")], &bus).unwrap();
        assert_eq!(NatsOptions::from_settings(&bus).unwrap(), options);
        assert_eq!(options.url, "nats://127.0.0.1:4222");
        assert_eq!(options.storage, StreamStorage::File);
        assert_eq!(options.replicas, 1);
        assert_eq!(options.max_age, None);
        assert_eq!(options.ack_wait, Duration::from_secs(7));
        assert_eq!(options.max_message_bytes, 4096);
    }

    #[test]
    fn variables_override_defaults() {
        let options = NatsOptions::from_vars(
            [
                ("NATS_URL", "nats://a:4222, nats://b:4222"),
                ("NATS_STREAM_STORAGE", "Memory"),
                ("NATS_STREAM_REPLICAS", "3"),
                ("NATS_STREAM_MAX_AGE_SECONDS", "3600"),
            ],
            &BusSettings::default(),
        )
        .unwrap();
        assert_eq!(options.servers(), ["nats://a:4222", "nats://b:4222"]);
        assert_eq!(options.storage, StreamStorage::Memory);
        assert_eq!(options.replicas, 3);
        assert_eq!(options.max_age, Some(Duration::from_secs(3600)));
    }

    #[test]
    fn unusable_values_are_typed_errors_naming_the_variable() {
        for (variable, value) in [
            ("NATS_STREAM_STORAGE", "disk"),
            ("NATS_STREAM_REPLICAS", "0"),
            ("NATS_STREAM_MAX_AGE_SECONDS", "1h"),
        ] {
            let error = NatsOptions::from_vars([(variable, value)], &BusSettings::default())
                .expect_err(value);
            assert_eq!(error.variable, variable);
            assert!(
                error
                    .to_string()
                    .starts_with(&format!("invalid {variable} `{value}`"))
            );
        }
    }
}
