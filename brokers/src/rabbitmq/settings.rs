//! The RabbitMQ backend's own variables.

use std::time::Duration;

use event_bus_core::{BusSettings, ConfigError};
use serde::Deserialize;

use super::broker::RabbitMqOptions;

/// The variables the RabbitMQ backend reads.
pub const VARIABLES: &[&str] = &["RABBITMQ_URL", "RABBITMQ_QUEUE_EXPIRES_SECONDS"];

#[derive(Deserialize)]
struct Variables {
    rabbitmq_url: Option<String>,
    rabbitmq_queue_expires_seconds: Option<u64>,
}

impl RabbitMqOptions {
    /// Options from `RABBITMQ_URL` and `RABBITMQ_QUEUE_EXPIRES_SECONDS`, with the exchange
    /// named after `EVENT_BUS_TOPIC_PREFIX` and publishing tried for
    /// `EVENT_BUS_ACK_DEADLINE_SECONDS` during an outage.
    pub fn from_settings(settings: &BusSettings) -> Result<Self, ConfigError> {
        let vars: Variables = settings.source.read()?;
        Ok(Self {
            url: vars
                .rabbitmq_url
                .unwrap_or_else(|| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned()),
            exchange: settings.topic_prefix.clone(),
            publish_timeout: settings.ack_deadline,
            queue_expiry: vars
                .rabbitmq_queue_expires_seconds
                .map(|seconds| Duration::from_secs(seconds.max(1))),
            dead_letters: Some((
                settings.dead_letter_topic.clone(),
                settings.dead_letter_subscription.clone(),
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_variables_with_defaults() {
        let options = RabbitMqOptions::from_settings(&BusSettings::default()).unwrap();
        assert_eq!(options.url, "amqp://guest:guest@127.0.0.1:5672/%2f");
        assert_eq!(options.exchange, "events");
        assert_eq!(options.queue_expiry, None);
        let settings = BusSettings::from_vars([
            ("RABBITMQ_URL", "amqp://127.0.0.1:5673/%2f"),
            ("RABBITMQ_QUEUE_EXPIRES_SECONDS", "60"),
        ])
        .unwrap();
        let options = RabbitMqOptions::from_settings(&settings).unwrap();
        assert_eq!(options.url, "amqp://127.0.0.1:5673/%2f");
        assert_eq!(options.queue_expiry, Some(Duration::from_secs(60)));
    }
}
