//! The conformance suite on Kafka, each case against a Tansu of its own that keeps its data in
//! a SQLite file (`event_bus_tests::kafka_server`), so the restart case kills and restarts it
//! mid-stream.
#![cfg(feature = "kafka")]

use std::sync::Arc;

use async_trait::async_trait;
use event_bus_brokers::kafka::{KafkaBroker, KafkaOptions};
use event_bus_core::conformance::ConformanceTarget;
use event_bus_core::{BoxError, Broker, BusSettings, Capabilities};
use event_bus_tests::kafka_server::TansuServer;

/// A private broker, with the test settings: a 6 s session timeout (Kafka's minimum) and a
/// 10 s publish deadline.
struct Kafka {
    server: TansuServer,
    options: KafkaOptions,
}

impl Kafka {
    fn private_server() -> Self {
        let server = TansuServer::start().expect("start Tansu");
        let settings = BusSettings::from_vars([
            (
                "KAFKA_BOOTSTRAP_SERVERS",
                server.bootstrap_servers().as_str(),
            ),
            ("KAFKA_SESSION_TIMEOUT_MS", "6000"),
            ("EVENT_BUS_ACK_DEADLINE_SECONDS", "10"),
        ])
        .expect("settings");
        Self {
            options: KafkaOptions::from_settings(&settings).expect("kafka settings"),
            server,
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
            can_restart_server: true,
            ..KafkaBroker::CAPABILITIES
        }
    }

    async fn restart_server(&self) -> Result<(), BoxError> {
        Ok(self.server.restart()?)
    }
}

event_bus_core::conformance_tests!(Kafka::private_server());
