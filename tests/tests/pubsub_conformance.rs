//! The conformance suite on Google Cloud Pub/Sub, against the emulator at PUBSUB_EMULATOR_HOST
//! (default 127.0.0.1:8085); every case has topics and subscriptions of its own prefix.
#![cfg(feature = "pubsub")]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use event_bus_brokers::pubsub::{PubSubBroker, PubSubOptions};
use event_bus_core::conformance::ConformanceTarget;
use event_bus_core::{Broker, Capabilities};

/// The emulator, with ordering keys on, as `EVENT_BUS_ENABLE_ORDERING=true` sets them.
struct Emulator {
    host: String,
}

impl Emulator {
    fn shared() -> Self {
        Self {
            host: std::env::var("PUBSUB_EMULATOR_HOST")
                .unwrap_or_else(|_| "127.0.0.1:8085".to_owned()),
        }
    }
}

#[async_trait]
impl ConformanceTarget for Emulator {
    async fn connect(&self) -> Arc<dyn Broker> {
        let options = PubSubOptions {
            project_id: "conformance".to_owned(),
            emulator_host: Some(self.host.clone()),
            ordering_keys: true,
            batching: true,
            ack_deadline: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            native_dead_letter: true,
            dead_letters: None,
        };
        Arc::new(
            PubSubBroker::connect(options)
                .await
                .expect("connect to the Pub/Sub emulator"),
        )
    }

    /// The emulator keeps everything in memory, so a restart loses it: not restarted here.
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            consumer_groups: true,
            per_key_ordering: true,
            persistent: false,
            new_subscriber_receives_old_messages: false,
            can_restart_server: false,
        }
    }
}

event_bus_core::conformance_tests!(Emulator::shared());
