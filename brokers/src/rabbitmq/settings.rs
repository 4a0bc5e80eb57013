//! The RabbitMQ backend's own variables.

use std::path::PathBuf;
use std::time::Duration;

use event_bus_core::{BusSettings, ConfigError};
use serde::Deserialize;

use super::broker::RabbitMqOptions;
use super::connector::RabbitMqTls;

/// The variables the RabbitMQ backend reads.
pub const VARIABLES: &[&str] = &[
    "RABBITMQ_URL",
    "RABBITMQ_QUEUE_EXPIRES_SECONDS",
    "RABBITMQ_TLS_CA_FILE",
    "RABBITMQ_TLS_CERT_FILE",
    "RABBITMQ_TLS_KEY_FILE",
];

#[derive(Deserialize)]
struct Variables {
    rabbitmq_url: Option<String>,
    rabbitmq_queue_expires_seconds: Option<u64>,
    rabbitmq_tls_ca_file: Option<PathBuf>,
    rabbitmq_tls_cert_file: Option<PathBuf>,
    rabbitmq_tls_key_file: Option<PathBuf>,
}

impl RabbitMqOptions {
    /// Options from `RABBITMQ_URL` (`amqps://` for TLS), `RABBITMQ_QUEUE_EXPIRES_SECONDS` and
    /// `RABBITMQ_TLS_CA_FILE` / `RABBITMQ_TLS_CERT_FILE` / `RABBITMQ_TLS_KEY_FILE` (PEM: the
    /// CA of the server's certificate, trusted besides the web's roots; a client certificate
    /// and its PKCS#8 key), with the exchange named after `EVENT_BUS_TOPIC_PREFIX`,
    /// publishing tried for `EVENT_BUS_ACK_DEADLINE_SECONDS` during an outage, and
    /// `EVENT_BUS_TOPOLOGY` deciding whether exchanges and queues are declared.
    pub fn from_settings(settings: &BusSettings) -> Result<Self, ConfigError> {
        let vars: Variables = settings.source.read()?;
        Ok(Self {
            url: vars
                .rabbitmq_url
                .unwrap_or_else(|| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned()),
            tls: RabbitMqTls {
                ca_file: vars.rabbitmq_tls_ca_file,
                cert_file: vars.rabbitmq_tls_cert_file,
                key_file: vars.rabbitmq_tls_key_file,
            },
            exchange: settings.topic_prefix.clone(),
            publish_timeout: settings.ack_deadline,
            queue_expiry: vars
                .rabbitmq_queue_expires_seconds
                .map(|seconds| Duration::from_secs(seconds.max(1))),
            dead_letters: Some((
                settings.dead_letter_topic.clone(),
                settings.dead_letter_subscription.clone(),
            )),
            topology: settings.topology,
        })
    }
}

#[cfg(test)]
mod tests {
    use event_bus_core::TopologyMode;

    use super::*;

    #[test]
    fn reads_its_variables_with_defaults() {
        let options = RabbitMqOptions::from_settings(&BusSettings::default()).unwrap();
        assert_eq!(options.url, "amqp://guest:guest@127.0.0.1:5672/%2f");
        assert_eq!(options.exchange, "events");
        assert_eq!(options.queue_expiry, None);
        assert_eq!(options.tls, RabbitMqTls::default());
        assert_eq!(options.topology, TopologyMode::Create);
        let settings = BusSettings::from_vars([
            ("RABBITMQ_URL", "amqps://127.0.0.1:5671/%2f"),
            ("RABBITMQ_QUEUE_EXPIRES_SECONDS", "60"),
            ("RABBITMQ_TLS_CA_FILE", "/etc/ca.pem"),
            ("RABBITMQ_TLS_CERT_FILE", "/etc/client.pem"),
            ("RABBITMQ_TLS_KEY_FILE", "/etc/client.key"),
            ("EVENT_BUS_TOPOLOGY", "existing"),
        ])
        .unwrap();
        let options = RabbitMqOptions::from_settings(&settings).unwrap();
        assert_eq!(options.url, "amqps://127.0.0.1:5671/%2f");
        assert_eq!(options.queue_expiry, Some(Duration::from_secs(60)));
        assert_eq!(options.tls.ca_file, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(
            options.tls.cert_file,
            Some(PathBuf::from("/etc/client.pem"))
        );
        assert_eq!(options.tls.key_file, Some(PathBuf::from("/etc/client.key")));
        assert_eq!(options.topology, TopologyMode::Existing);
    }
}
