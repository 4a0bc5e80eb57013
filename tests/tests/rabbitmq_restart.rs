//! RabbitMQ across outages, on a node this test starts itself: the conformance suite's restart
//! case, and publishing while the server is down.
#![cfg(feature = "rabbitmq")]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use event_bus_brokers::rabbitmq::{RabbitMqBroker, RabbitMqError, RabbitMqOptions};
use event_bus_core::conformance::ConformanceTarget;
use event_bus_core::{
    BoxError, Broker, BusError, BusSettings, Capabilities, EventBus, EventEnvelope, Recorder,
};
use event_bus_tests::rabbitmq_server::RabbitMqServer;

/// Long enough for the node to come back before a publish gives up.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(3);

struct PrivateNode(RabbitMqServer);

impl PrivateNode {
    fn options(&self) -> RabbitMqOptions {
        RabbitMqOptions {
            url: self.0.url(),
            exchange: "restart".to_owned(),
            publish_timeout: PUBLISH_TIMEOUT,
            queue_expiry: None,
            dead_letters: None,
            tls: Default::default(),
            topology: Default::default(),
        }
    }
}

#[async_trait]
impl ConformanceTarget for PrivateNode {
    async fn connect(&self) -> Arc<dyn Broker> {
        Arc::new(
            RabbitMqBroker::connect(self.options())
                .await
                .expect("connect to the node"),
        )
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            consumer_groups: true,
            per_key_ordering: false,
            persistent: true,
            new_subscriber_receives_old_messages: false,
            can_restart_server: true,
        }
    }

    async fn restart_server(&self) -> Result<(), BoxError> {
        Ok(self.0.restart()?)
    }
}

fn start_node() -> PrivateNode {
    PrivateNode(RabbitMqServer::start().expect("start a RabbitMQ node"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_event_is_lost_across_a_server_restart() {
    event_bus_core::conformance::no_event_is_lost_across_a_server_restart(&start_node()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_during_an_outage_fails_clearly_and_recovers_after_it() {
    let node = start_node();
    let settings = BusSettings::from_vars([("EVENT_BUS_TOPIC_PREFIX", "outage")]).unwrap();
    let bus = EventBus::new(node.connect().await, settings);
    let recorder = Recorder::new();
    bus.subscribe(bus.subscription("outage.event", "g"), recorder.clone())
        .await
        .unwrap();

    node.0.stop().unwrap();
    let lost = EventEnvelope::builder("outage.event", serde_json::json!({"n": 1})).build();
    let error = bus.publish(&lost).await.expect_err("the server is down");
    let BusError::Backend { source, .. } = &error else {
        panic!("not a backend error: {error}")
    };
    assert!(
        matches!(
            source.downcast_ref(),
            Some(RabbitMqError::PublishFailed { .. })
        ),
        "{error}"
    );
    assert!(error.to_string().contains("kept failing"), "{error}");

    node.0.boot().unwrap();
    let kept = EventEnvelope::builder("outage.event", serde_json::json!({"n": 2})).build();
    bus.publish(&kept).await.expect("publishing works again");
    let handled = recorder
        .wait_for(1, Duration::from_secs(60))
        .await
        .expect("the subscription consumes again after the outage");
    assert_eq!(handled[0], kept);
    bus.shutdown().await.unwrap();
}
