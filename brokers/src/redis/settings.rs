//! The Redis backend's own variables.

use event_bus_core::{BusSettings, ConfigError};
use serde::Deserialize;

use super::broker::RedisOptions;

/// The variables the Redis backend reads.
pub const VARIABLES: &[&str] = &[
    "REDIS_EVENT_URL",
    "REDIS_CHANNEL_PREFIX",
    "REDIS_STREAM_MAX_LEN",
];

/// Where the server is when `REDIS_EVENT_URL` is unset.
const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

#[derive(Deserialize)]
struct Variables {
    redis_event_url: Option<String>,
    redis_channel_prefix: Option<String>,
    redis_stream_max_len: Option<usize>,
}

/// Which Redis transport the settings choose.
pub(super) enum RedisMode {
    /// Streams with consumer groups.
    Streams(RedisOptions),
    /// Plain channels under a prefix, at this URL.
    Channels { url: String, prefix: String },
}

impl RedisOptions {
    /// Options from `REDIS_EVENT_URL`, `REDIS_STREAM_MAX_LEN` and `EVENT_BUS_ACK_DEADLINE_SECONDS`.
    pub fn from_settings(settings: &BusSettings) -> Result<Self, ConfigError> {
        let vars: Variables = settings.source.read()?;
        Ok(Self::from_variables(settings, vars))
    }

    fn from_variables(settings: &BusSettings, vars: Variables) -> Self {
        Self {
            url: vars
                .redis_event_url
                .unwrap_or_else(|| DEFAULT_URL.to_owned()),
            ack_deadline: settings.ack_deadline,
            stream_max_len: vars.redis_stream_max_len,
        }
    }
}

impl RedisMode {
    /// Channels when `REDIS_CHANNEL_PREFIX` is set, streams otherwise.
    pub(super) fn from_settings(settings: &BusSettings) -> Result<Self, ConfigError> {
        let mut vars: Variables = settings.source.read()?;
        Ok(
            match vars.redis_channel_prefix.take().filter(|p| !p.is_empty()) {
                Some(prefix) => Self::Channels {
                    url: vars
                        .redis_event_url
                        .unwrap_or_else(|| DEFAULT_URL.to_owned()),
                    prefix,
                },
                None => Self::Streams(RedisOptions::from_variables(settings, vars)),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn streams_by_default_channels_with_a_prefix() {
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

        let settings = BusSettings::from_vars([
            ("REDIS_CHANNEL_PREFIX", "events:"),
            ("REDIS_EVENT_URL", "redis://127.0.0.1:6380"),
        ])
        .unwrap();
        let RedisMode::Channels { url, prefix } = RedisMode::from_settings(&settings).unwrap()
        else {
            panic!("channels expected");
        };
        assert_eq!(
            (url.as_str(), prefix.as_str()),
            ("redis://127.0.0.1:6380", "events:")
        );
    }
}
