//! The Pub/Sub backend against the raw `gcloud-pubsub` client doing the same work, in one run:
//! a topic, a subscription with a dead-letter policy, each publish awaiting the server's
//! message id, one consumer pulling up to 16 messages at a time, decoding the JSON and
//! acknowledging each. Measures publish rate, end-to-end rate and publish-to-handle latency of
//! paced events.
//!
//! `cargo bench -p event-bus-brokers --features pubsub --bench pubsub` (needs the emulator at
//! PUBSUB_EMULATOR_HOST, default `127.0.0.1:8085`; fresh names, deleted after).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Clock, Measured, event, event_number, print_table, run};
use event_bus_brokers::pubsub::{PubSubBroker, PubSubOptions, dead_letter_attempts};
use event_bus_core::{BusSettings, EventBus, handler_fn};
use gcloud_googleapis::pubsub::v1::{DeadLetterPolicy, PubsubMessage};
use gcloud_pubsub::client::Client;
use gcloud_pubsub::publisher::PublisherConfig;
use gcloud_pubsub::subscription::SubscriptionConfig;

const PROJECT: &str = "bench";
const IN_FLIGHT: usize = 16;

fn options(host: &str) -> PubSubOptions {
    PubSubOptions {
        project_id: PROJECT.to_owned(),
        emulator_host: Some(host.to_owned()),
        ordering_keys: false,
        batching: true,
        ack_deadline: Duration::from_secs(30),
        connect_timeout: Duration::from_secs(5),
        native_dead_letter: true,
        dead_letters: None,
        topology: Default::default(),
    }
}

async fn through_the_bus(host: &str, prefix: &str) -> Measured {
    let broker = Arc::new(PubSubBroker::connect(options(host)).await.expect("connect"));
    let client = broker.client().clone();
    let settings = BusSettings::from_vars([("EVENT_BUS_TOPIC_PREFIX", prefix)]).expect("settings");
    let bus = EventBus::new(broker, settings);
    let clock = Arc::new(Clock::default());
    let handler = {
        let clock = Arc::clone(&clock);
        handler_fn(move |event| {
            clock.handled(event.payload["n"].as_u64().expect("n"));
            async { Ok(()) }
        })
    };
    let config = bus
        .subscription("bench.event", "bench")
        .max_in_flight(IN_FLIGHT);
    bus.subscribe(config.clone(), handler)
        .await
        .expect("subscribe");
    let measured = run(&clock, async |n| {
        bus.publish(&event(n)).await.expect("publish")
    })
    .await;
    bus.shutdown().await.expect("shutdown");
    let _ = client
        .subscription(&config.consumer_group)
        .delete(None)
        .await;
    let _ = client.topic(&config.topic).delete(None).await;
    let _ = client
        .topic(config.dead_letter_topic.as_deref().unwrap_or_default())
        .delete(None)
        .await;
    measured
}

async fn through_the_raw_client(host: &str, prefix: &str) -> Measured {
    let broker = PubSubBroker::connect(options(host)).await.expect("connect");
    let client: Client = broker.client().clone();
    let (topic_id, dead_letter_id, subscription_id) = (
        format!("{prefix}-bench-event"),
        format!("{prefix}-dead-letter"),
        format!("{prefix}-raw"),
    );
    let topic = client
        .create_topic(&topic_id, None, None)
        .await
        .expect("topic");
    client
        .create_topic(&dead_letter_id, None, None)
        .await
        .expect("dead-letter topic");
    let config = SubscriptionConfig {
        ack_deadline_seconds: 30,
        dead_letter_policy: Some(DeadLetterPolicy {
            dead_letter_topic: client.fully_qualified_topic_name(&dead_letter_id),
            max_delivery_attempts: dead_letter_attempts(5),
        }),
        ..SubscriptionConfig::default()
    };
    let subscription = client
        .create_subscription(&subscription_id, &topic_id, config, None)
        .await
        .expect("subscription");
    let clock = Arc::new(Clock::default());
    let reading = {
        let clock = Arc::clone(&clock);
        let subscription = subscription.clone();
        tokio::spawn(async move {
            loop {
                let Ok(messages) = subscription.pull(IN_FLIGHT as i32, None).await else {
                    return;
                };
                for message in messages {
                    clock.handled(event_number(&message.message.data));
                    message.ack().await.expect("ack");
                }
            }
        })
    };
    let publisher = topic.new_publisher(Some(PublisherConfig {
        workers: 1,
        ..PublisherConfig::default()
    }));
    let measured = run(&clock, async |n| {
        let message = event(n).to_message().expect("encode");
        let pubsub = PubsubMessage {
            data: message.payload.to_vec(),
            attributes: message.headers.into_iter().collect(),
            ..PubsubMessage::default()
        };
        publisher
            .publish_immediately(vec![pubsub], None)
            .await
            .expect("publish");
    })
    .await;
    reading.abort();
    let _ = subscription.delete(None).await;
    let _ = topic.delete(None).await;
    let _ = client.topic(&dead_letter_id).delete(None).await;
    measured
}

#[tokio::main]
async fn main() {
    let host =
        std::env::var("PUBSUB_EMULATOR_HOST").unwrap_or_else(|_| "127.0.0.1:8085".to_owned());
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let bus = through_the_bus(&host, &format!("bench-{run_id}")).await;
    let raw = through_the_raw_client(&host, &format!("bench-raw-{run_id}")).await;
    print_table("Pub/Sub emulator", &bus, &raw);
}
