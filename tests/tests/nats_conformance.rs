//! The conformance suite on NATS JetStream, against a nats-server this test starts itself
//! (JetStream storing in files), so the restart case can stop and start it.
#![cfg(feature = "nats")]

use std::sync::Arc;

use async_trait::async_trait;
use event_bus_brokers::nats::{NatsBroker, NatsOptions};
use event_bus_core::conformance::ConformanceTarget;
use event_bus_core::{BoxError, Broker, BusSettings, Capabilities};
use event_bus_tests::nats_server::NatsServer;

/// A private server, with the bus's default settings (an ack deadline of 30 seconds).
struct Nats(NatsServer);

#[async_trait]
impl ConformanceTarget for Nats {
    async fn connect(&self) -> Arc<dyn Broker> {
        let options = NatsOptions::from_vars([("NATS_URL", self.0.url())], &BusSettings::default())
            .expect("options");
        Arc::new(NatsBroker::connect(options).await.expect("connect to nats"))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            can_restart_server: true,
            ..NatsBroker::CAPABILITIES
        }
    }

    async fn restart_server(&self) -> Result<(), BoxError> {
        Ok(self.0.restart()?)
    }
}

event_bus_core::conformance_tests!(Nats(NatsServer::start().expect("start nats-server")));
