//! Throughput of the Pub/Sub backend against the raw `gcloud-pubsub` client it is built on,
//! doing the same work in one run of interleaved rounds (the side that goes first changes
//! every round), against the emulator. Both sides get the bus's topology: the topic, and the
//! group's subscription with a 30 s ack deadline and Pub/Sub's dead-letter policy (7 attempts)
//! to the dead-letter topic.
//!
//! - publish: 64 concurrent publishing tasks, each event encoded as the bus's envelope JSON
//!   with the bus's attributes (`ce_*` as `ce-*`, the key as `x-event-bus-key`), each publish
//!   awaiting the server's message id. The bus, batching on (its default), puts every publish
//!   queued while a request is in flight into the next request; the raw side publishes
//!   through the client's own batching `Publisher` with its default settings (3 workers,
//!   bundles of 3, flushed after 100 ms);
//! - publish_batch: 4 concurrent tasks publishing batches of 100: the bus's `publish_batch`
//!   (one request of 100) against the client's `publish_bulk` of 100, whose 100 answers are
//!   awaited together (the client sends the bundle as one request too);
//! - consume: 4 members, each with a client of its own, pulling up to 16 messages at a time, each
//!   message decoded into an `EventEnvelope` and acknowledged on its own (one `Acknowledge` request
//!   each), the 16 of a pull at once. The bus pulls again while its handlers run; the raw side
//!   pulls when it has acknowledged the last pull. Each side consumes the subscription its publish
//!   round filled, so consuming is measured alone (after a 3 s pause that lets the broker settle),
//!   from the first event handled to the last.
//!
//! Prints a markdown table: each side's median events/s over the rounds with the spread
//! (lowest–highest), and the ratio of the medians.
//!
//! `cargo bench -p event-bus-brokers --features pubsub --bench pubsub_throughput` (needs the
//! emulator at PUBSUB_EMULATOR_HOST, default `127.0.0.1:8085`; fresh names per round, deleted
//! after it).

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::{
    Counter, MEMBERS, PUBLISHERS, Prefixes, Side, Throughput, batch_rate, bus_batch_rate,
    bus_consume_rate, bus_publish_rate, decoded_number, event, measure, publish_rate,
};
use event_bus_brokers::pubsub::{PubSubBroker, PubSubOptions, dead_letter_attempts};
use event_bus_core::{BusSettings, EventBus, EventEnvelope, SubscriptionConfig};
use gcloud_gax::conn::{ConnectionOptions, Environment};
use gcloud_googleapis::pubsub::v1::{DeadLetterPolicy, PubsubMessage};
use gcloud_pubsub::apiv1::conn_pool::PUBSUB;
use gcloud_pubsub::client::{Client, ClientConfig};
use gcloud_pubsub::publisher::Publisher;

const ROUNDS: usize = 5;
const EVENTS: u64 = 60_000;
/// Messages one member pulls at a time, and handles at once.
const PULL: usize = 16;
const GROUP: &str = "bench";
const EVENT_TYPE: &str = "bench.event";
const PROJECT: &str = "bench";

fn settings(host: &str, prefix: &str) -> BusSettings {
    let keeper = format!("{prefix}-dead-letters");
    BusSettings::from_vars([
        ("EVENT_BUS_TOPIC_PREFIX", prefix),
        ("PUBSUB_EMULATOR_HOST", host),
        ("GCP_PROJECT_ID", PROJECT),
        ("DEAD_LETTER_SUBSCRIPTION", keeper.as_str()),
    ])
    .expect("settings")
}

async fn bus(host: &str, prefix: &str) -> EventBus {
    let settings = settings(host, prefix);
    let options = PubSubOptions::from_settings(&settings).expect("options");
    let broker = PubSubBroker::connect(options).await.expect("connect");
    EventBus::new(Arc::new(broker), settings)
}

fn subscription(bus: &EventBus) -> SubscriptionConfig {
    bus.subscription(EVENT_TYPE, GROUP).max_in_flight(PULL)
}

/// A bus whose group's subscription exists, so what it publishes is kept for the group.
async fn provisioned_bus(host: &str, prefix: &str) -> EventBus {
    let bus = bus(host, prefix).await;
    bus.broker()
        .provision(&subscription(&bus))
        .await
        .expect("provision");
    bus
}

/// A client set up as the backend sets up its own: two channels to the emulator.
async fn raw_client(host: &str) -> Client {
    let config = ClientConfig {
        pool_size: 2,
        project_id: Some(PROJECT.to_owned()),
        environment: Environment::Emulator(host.to_owned()),
        endpoint: PUBSUB.to_owned(),
        connection_option: ConnectionOptions {
            connect_timeout: Some(Duration::from_secs(5)),
            ..ConnectionOptions::default()
        },
    };
    Client::new(config).await.expect("client")
}

/// The topic, dead-letter topic and subscription names the bus uses under `prefix`.
struct Names {
    topic: String,
    dead_letter_topic: String,
    subscription: String,
}

impl Names {
    fn new(host: &str, prefix: &str) -> Self {
        let topics = settings(host, prefix).topic_names();
        Self {
            topic: topics.topic(EVENT_TYPE),
            dead_letter_topic: topics.dead_letter_topic().to_owned(),
            subscription: topics.handler_subscription(EVENT_TYPE, GROUP),
        }
    }
}

/// Creates the topics and the group's subscription as the bus does; returns the publisher of
/// the topic, with the client's default batching.
async fn raw_topology(client: &Client, names: &Names) -> Publisher {
    let topic = client
        .create_topic(&names.topic, None, None)
        .await
        .expect("topic");
    client
        .create_topic(&names.dead_letter_topic, None, None)
        .await
        .expect("dead-letter topic");
    let config = gcloud_pubsub::subscription::SubscriptionConfig {
        ack_deadline_seconds: 30,
        dead_letter_policy: Some(DeadLetterPolicy {
            dead_letter_topic: client.fully_qualified_topic_name(&names.dead_letter_topic),
            max_delivery_attempts: dead_letter_attempts(5),
        }),
        ..Default::default()
    };
    client
        .create_subscription(&names.subscription, &names.topic, config, None)
        .await
        .expect("subscription");
    topic.new_publisher(None)
}

/// Event `n` as the bus publishes it, batching on and ordering off.
fn raw_message(event: &EventEnvelope) -> PubsubMessage {
    let message = event.to_message().expect("encode");
    let mut attributes: HashMap<String, String> = message
        .headers
        .into_iter()
        .map(|(name, value)| match name.strip_prefix("ce_") {
            Some(attribute) => (format!("ce-{attribute}"), value),
            None => (name, value),
        })
        .collect();
    if let Some(key) = message.key {
        attributes.insert("x-event-bus-key".to_owned(), key);
    }
    PubsubMessage {
        data: message.payload.to_vec(),
        attributes,
        ..PubsubMessage::default()
    }
}

async fn raw_publish(host: &str, prefix: &str) -> f64 {
    let client = raw_client(host).await;
    let mut publisher = raw_topology(&client, &Names::new(host, prefix)).await;
    let rate = publish_rate(EVENTS, PUBLISHERS, {
        let publisher = publisher.clone();
        move |n| {
            let publisher = publisher.clone();
            async move {
                let answer = publisher.publish(raw_message(&event(n))).await;
                answer.get().await.expect("publish");
            }
        }
    })
    .await;
    publisher.shutdown().await;
    rate
}

async fn raw_publish_batch(host: &str, prefix: &str) -> f64 {
    let client = raw_client(host).await;
    let mut publisher = raw_topology(&client, &Names::new(host, prefix)).await;
    let rate = batch_rate(EVENTS, {
        let publisher = publisher.clone();
        move |events: Vec<EventEnvelope>| {
            let publisher = publisher.clone();
            async move {
                let answers = publisher
                    .publish_bulk(events.iter().map(raw_message).collect())
                    .await;
                for answer in futures::future::join_all(answers.into_iter().map(|a| a.get())).await
                {
                    answer.expect("publish");
                }
            }
        }
    })
    .await;
    publisher.shutdown().await;
    rate
}

/// One member: pull up to `PULL` messages, decode each, acknowledge each with its own request.
async fn raw_member(client: Client, subscription: String, counter: Arc<Counter>) {
    let subscription = client.subscription(&subscription);
    loop {
        let messages = subscription.pull(PULL as i32, None).await.expect("pull");
        let acks = messages.into_iter().map(|message| {
            counter.handled(decoded_number(&message.message.data));
            async move { message.ack().await.expect("ack") }
        });
        futures::future::join_all(acks).await;
    }
}

async fn raw_consume(host: &str, prefix: &str) -> f64 {
    let names = Names::new(host, prefix);
    let counter = Arc::new(Counter::new(EVENTS));
    let mut members = Vec::with_capacity(MEMBERS);
    for _ in 0..MEMBERS {
        let client = raw_client(host).await;
        members.push(tokio::spawn(raw_member(
            client,
            names.subscription.clone(),
            Arc::clone(&counter),
        )));
    }
    let rate = counter.rate_from_first().await;
    for member in members {
        member.abort();
    }
    rate
}

/// The Pub/Sub backend and the raw client, on one emulator.
struct PubSub {
    host: String,
    /// Names this run's topics and subscriptions apart from any other's.
    run: String,
    /// Deletes what the rounds made.
    cleanup: Client,
}

impl Throughput for PubSub {
    type Round = Prefixes;

    const SIDES: &'static [Side] = &[Side::Bus, Side::Raw];

    fn round(&self, round: usize, side: Side) -> Prefixes {
        Prefixes::new(&self.run, round, side)
    }

    async fn publish(&self, side: Side, prefixes: &Prefixes) -> f64 {
        let (host, prefix) = (&self.host, &prefixes.publish);
        match side {
            Side::Bus => bus_publish_rate(provisioned_bus(host, prefix).await, EVENTS).await,
            _ => raw_publish(host, prefix).await,
        }
    }

    async fn publish_batch(&self, side: Side, prefixes: &Prefixes) -> Option<f64> {
        let (host, prefix) = (&self.host, &prefixes.batch);
        Some(match side {
            Side::Bus => bus_batch_rate(provisioned_bus(host, prefix).await, EVENTS).await,
            _ => raw_publish_batch(host, prefix).await,
        })
    }

    /// Each bus member is a bus of its own (its own broker and client).
    async fn consume(&self, side: Side, prefixes: &Prefixes) -> f64 {
        let (host, prefix) = (&self.host, &prefixes.publish);
        match side {
            Side::Bus => {
                bus_consume_rate(EVENTS, async || bus(host, prefix).await, subscription).await
            }
            _ => raw_consume(host, prefix).await,
        }
    }

    /// Deletes the subscriptions first, then the topics.
    async fn delete(&self, _: Side, prefixes: &Prefixes) {
        for prefix in [&prefixes.publish, &prefixes.batch] {
            let names = Names::new(&self.host, prefix);
            let keeper = settings(&self.host, prefix).dead_letter_subscription;
            for subscription in [&names.subscription, &keeper] {
                let _ = self.cleanup.subscription(subscription).delete(None).await;
            }
            for topic in [&names.topic, &names.dead_letter_topic] {
                let _ = self.cleanup.topic(topic).delete(None).await;
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let host =
        std::env::var("PUBSUB_EMULATOR_HOST").unwrap_or_else(|_| "127.0.0.1:8085".to_owned());
    let pubsub = PubSub {
        cleanup: raw_client(&host).await,
        host,
        run: uuid::Uuid::now_v7().simple().to_string(),
    };
    measure(&pubsub, ROUNDS).await.print(
        "Pub/Sub emulator",
        EVENTS,
        "raw gcloud-pubsub",
        &format!("acking, {PULL} per pull"),
    );
}
