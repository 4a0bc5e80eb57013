//! The Redis backend's own variables.

use std::path::PathBuf;

use event_bus_core::{BusSettings, ConfigError};
use serde::Deserialize;

use super::broker::RedisOptions;
use super::client::RedisTls;

/// The variables the Redis backend reads.
pub const VARIABLES: &[&str] = &[
    "REDIS_EVENT_URL",
    "REDIS_TRANSPORT",
    "REDIS_CHANNEL_PREFIX",
    "REDIS_STREAM_MAX_LEN",
    "REDIS_TLS_CA_FILE",
    "REDIS_TLS_CERT_FILE",
    "REDIS_TLS_KEY_FILE",
];

/// Where the server is when `REDIS_EVENT_URL` is unset.
const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

#[derive(Deserialize)]
struct Variables {
    redis_event_url: Option<String>,
    redis_transport: Option<String>,
    redis_channel_prefix: Option<String>,
    redis_stream_max_len: Option<usize>,
    redis_tls_ca_file: Option<PathBuf>,
    redis_tls_cert_file: Option<PathBuf>,
    redis_tls_key_file: Option<PathBuf>,
}

impl Variables {
    fn tls(&self) -> RedisTls {
        RedisTls {
            ca_file: self.redis_tls_ca_file.clone(),
            cert_file: self.redis_tls_cert_file.clone(),
            key_file: self.redis_tls_key_file.clone(),
        }
    }
}

/// Which Redis transport the settings choose.
pub(super) enum RedisMode {
    /// Streams with consumer groups.
    Streams(RedisOptions),
    /// Plain channels under a prefix, at this URL.
    Channels {
        url: String,
        prefix: String,
        tls: RedisTls,
    },
}

impl RedisOptions {
    /// Options from `REDIS_EVENT_URL`, `REDIS_STREAM_MAX_LEN` and `EVENT_BUS_ACK_DEADLINE_SECONDS`.
    pub fn from_settings(settings: &BusSettings) -> Result<Self, ConfigError> {
        let vars: Variables = settings.source.read()?;
        Ok(Self::from_variables(settings, vars))
    }

    fn from_variables(settings: &BusSettings, vars: Variables) -> Self {
        Self {
            tls: vars.tls(),
            url: vars
                .redis_event_url
                .unwrap_or_else(|| DEFAULT_URL.to_owned()),
            ack_deadline: settings.ack_deadline,
            stream_max_len: vars.redis_stream_max_len,
            topology: settings.topology,
        }
    }
}

impl RedisMode {
    /// Channels when `REDIS_TRANSPORT=channels`, streams otherwise. `REDIS_CHANNEL_PREFIX`
    /// alone does not switch: deployments set it as a naming prefix, and channels lose what
    /// streams keep.
    pub(super) fn from_settings(settings: &BusSettings) -> Result<Self, ConfigError> {
        let mut vars: Variables = settings.source.read()?;
        let transport = vars
            .redis_transport
            .take()
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty());
        match transport.as_deref() {
            None | Some("streams") => {
                if vars
                    .redis_channel_prefix
                    .as_ref()
                    .is_some_and(|p| !p.is_empty())
                {
                    tracing::info!(
                        "REDIS_CHANNEL_PREFIX is set, but the transport is streams (set REDIS_TRANSPORT=channels for channels); the prefix is not used"
                    );
                }
                Ok(Self::Streams(RedisOptions::from_variables(settings, vars)))
            }
            Some("channels") => Ok(Self::Channels {
                tls: vars.tls(),
                url: vars
                    .redis_event_url
                    .unwrap_or_else(|| DEFAULT_URL.to_owned()),
                prefix: vars.redis_channel_prefix.unwrap_or_default(),
            }),
            Some(other) => Err(ConfigError::InvalidValue {
                variable: "REDIS_TRANSPORT",
                value: other.to_owned(),
                expected: "streams or channels",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn streams_by_default_channels_only_when_asked_for() {
        let settings = BusSettings::from_vars([
            ("REDIS_STREAM_MAX_LEN", "1000"),
            ("EVENT_BUS_ACK_DEADLINE_SECONDS", "7"),
        ])
        .unwrap();
        let RedisMode::Streams(options) = RedisMode::from_settings(&settings).unwrap() else {
            panic!("streams expected");
        };
        assert_eq!(options.url, DEFAULT_URL);
        assert_eq!(options.stream_max_len, Some(1000));
        assert_eq!(options.ack_deadline, Duration::from_secs(7));

        // The seeds set the prefix as a name: alone, it keeps the durable streams.
        let settings = BusSettings::from_vars([("REDIS_CHANNEL_PREFIX", "events")]).unwrap();
        assert!(matches!(
            RedisMode::from_settings(&settings).unwrap(),
            RedisMode::Streams(_)
        ));

        let settings = BusSettings::from_vars([
            ("REDIS_TRANSPORT", "Channels"),
            ("REDIS_CHANNEL_PREFIX", "events:"),
            ("REDIS_EVENT_URL", "redis://127.0.0.1:6380"),
        ])
        .unwrap();
        let RedisMode::Channels { url, prefix, .. } = RedisMode::from_settings(&settings).unwrap()
        else {
            panic!("channels expected");
        };
        assert_eq!(
            (url.as_str(), prefix.as_str()),
            ("redis://127.0.0.1:6380", "events:")
        );

        let settings = BusSettings::from_vars([("REDIS_TRANSPORT", "carrier-pigeon")]).unwrap();
        assert!(matches!(
            RedisMode::from_settings(&settings),
            Err(ConfigError::InvalidValue {
                variable: "REDIS_TRANSPORT",
                ..
            })
        ));
    }
}
