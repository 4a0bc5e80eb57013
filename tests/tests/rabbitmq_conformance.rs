//! The conformance suite on RabbitMQ, against the server on 127.0.0.1:5672 (or RABBITMQ_URL);
//! each case declares its own exchange and queues, which expire once the case is over. The
//! restart case runs in `rabbitmq_restart.rs` on a node of its own.
#![cfg(feature = "rabbitmq")]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use event_bus_brokers::rabbitmq::{RabbitMqBroker, RabbitMqOptions};
use event_bus_core::conformance::ConformanceTarget;
use event_bus_core::{Broker, Capabilities};

/// A server and an exchange of the case's own.
struct RabbitMq {
    url: String,
    exchange: String,
}

impl RabbitMq {
    fn shared_server() -> Self {
        Self {
            url: std::env::var("RABBITMQ_URL")
                .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned()),
            exchange: format!("conf-{}", uuid::Uuid::now_v7().simple()),
        }
    }
}

#[async_trait]
impl ConformanceTarget for RabbitMq {
    async fn connect(&self) -> Arc<dyn Broker> {
        let options = RabbitMqOptions {
            url: self.url.clone(),
            exchange: self.exchange.clone(),
            publish_timeout: Duration::from_secs(5),
            queue_expiry: Some(Duration::from_secs(300)),
            dead_letters: None,
            tls: Default::default(),
            topology: Default::default(),
        };
        Arc::new(
            RabbitMqBroker::connect(options)
                .await
                .expect("connect to rabbitmq"),
        )
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            consumer_groups: true,
            per_key_ordering: false,
            persistent: true,
            new_subscriber_receives_old_messages: false,
            can_restart_server: false,
        }
    }
}

event_bus_core::conformance_tests!(RabbitMq::shared_server());
