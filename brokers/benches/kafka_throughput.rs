//! Throughput of the Kafka backend against the raw `rdkafka` client with the bus's settings,
//! doing the same work in one run of interleaved rounds (the side that goes first changes
//! every round). Topics have 4 partitions. The producer is the bus's: `acks=all`, idempotent,
//! `linger.ms=5`, `batch.size=1000000`; records are keyed by aggregate id and carry the
//! message's headers. Before the clock starts each side publishes one record, which creates
//! the bus's topic and lets each producer learn the topic's partitions.
//!
//! - publish: 64 concurrent publishing tasks, each record awaited until acknowledged;
//! - publish_batch: 4 concurrent tasks publishing batches of 100 (the bus's `publish_batch`
//!   against 100 records enqueued together, their acknowledgements awaited together);
//! - consume: 4 members of one consumer group (one partition each), each with the bus's consumer
//!   settings (offsets stored by the member, committed in the background every 500 ms, from the
//!   earliest offset), each record decoded into an `EventEnvelope` before its offset is stored. The
//!   bus's members also consume their group's retry topic (empty here); the raw members read one
//!   record at a time. Each side consumes the topic its publish round filled, so consuming is
//!   measured alone (after a 3 s pause that lets the broker settle), from the first event handled
//!   to the last (joining the group is left out; the members join together).
//!
//! Prints a markdown table: each side's median events/s over the rounds with the spread
//! (lowest–highest), and the ratio of the medians.
//!
//! `cargo bench -p event-bus-brokers --features kafka --bench kafka_throughput` (needs a
//! broker on KAFKA_BOOTSTRAP_SERVERS, default `127.0.0.1:9092`; fresh topics per round,
//! deleted after it).

mod common;

use std::sync::Arc;

use common::{
    Counter, MEMBERS, PUBLISHERS, Prefixes, Side, Throughput, batch_rate, bus_batch_rate,
    bus_consume_rate, bus_publish_rate, decoded_number, event, measure, publish_rate,
};
use event_bus_brokers::kafka::{KafkaBroker, KafkaOptions};
use event_bus_core::{BusSettings, EventBus, EventEnvelope};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{ClientConfig, Message as _};

const ROUNDS: usize = 5;
const EVENTS: u64 = 20_000;
/// The events of a publish round and the record published before the clock starts.
const RECORDS: u64 = EVENTS + 1;
const PARTITIONS: i32 = 4;
/// Deliveries one bus member handles at once.
const IN_FLIGHT: usize = 16;
const GROUP: &str = "bench";
const EVENT_TYPE: &str = "bench.event";

fn settings(servers: &str, prefix: &str) -> BusSettings {
    BusSettings::from_vars([
        ("KAFKA_BOOTSTRAP_SERVERS", servers),
        ("EVENT_BUS_TOPIC_PREFIX", prefix),
        ("KAFKA_TOPIC_PARTITIONS", &PARTITIONS.to_string()),
    ])
    .expect("settings")
}

fn options(servers: &str, prefix: &str) -> KafkaOptions {
    KafkaOptions::from_settings(&settings(servers, prefix)).expect("options")
}

async fn bus(servers: &str, prefix: &str) -> EventBus {
    let broker = KafkaBroker::connect(options(servers, prefix))
        .await
        .expect("connect");
    EventBus::new(Arc::new(broker), settings(servers, prefix))
}

/// A bus that has published event `EVENTS`, which created its topic.
async fn warm_bus(servers: &str, prefix: &str) -> EventBus {
    let bus = bus(servers, prefix).await;
    bus.publish(&event(EVENTS)).await.expect("warm up");
    bus
}

/// The client settings the bus uses for `options`; `producer` and `consumer` add their own.
fn common_config(options: &KafkaOptions) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &options.bootstrap_servers)
        .set("client.id", &options.client_id)
        .set("message.max.bytes", record_size_limit(options))
        .set("reconnect.backoff.max.ms", "1000")
        .set("log_level", "3");
    config
}

/// The bus's limit plus room for a record's framing, as the backend sets it.
fn record_size_limit(options: &KafkaOptions) -> String {
    (options.max_message_bytes + 16 * 1024).to_string()
}

fn producer(options: &KafkaOptions) -> FutureProducer {
    common_config(options)
        .set("acks", "all")
        .set("linger.ms", options.linger.as_millis().to_string())
        .set("batch.size", options.batch_size.to_string())
        .set("enable.idempotence", options.enable_idempotence.to_string())
        .set(
            "message.timeout.ms",
            options.delivery_timeout.as_millis().to_string(),
        )
        .create()
        .expect("producer")
}

fn consumer(options: &KafkaOptions, group: &str) -> StreamConsumer {
    let session = options.session_timeout.as_millis();
    common_config(options)
        .set("group.id", group)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "500")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("session.timeout.ms", session.to_string())
        .set("heartbeat.interval.ms", (session / 3).to_string())
        .set(
            "max.poll.interval.ms",
            options.max_poll_interval.as_millis().to_string(),
        )
        .create()
        .expect("consumer")
}

/// Creates `topic` as the bus creates its topics.
async fn create_topic(options: &KafkaOptions, topic: &str) {
    let admin: AdminClient<DefaultClientContext> = common_config(options).create().expect("admin");
    let size = record_size_limit(options);
    let new = NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(1))
        .set("max.message.bytes", &size);
    for created in admin
        .create_topics(&[new], &AdminOptions::new())
        .await
        .expect("create topic")
    {
        created.expect("topic created");
    }
}

/// Event `n` as the bus publishes it: keyed by aggregate id, the message's headers.
async fn raw_send(
    producer: &FutureProducer,
    options: &KafkaOptions,
    topic: &str,
    event: &EventEnvelope,
) {
    let message = event.to_message().expect("encode");
    let mut headers = OwnedHeaders::new_with_capacity(message.headers.len());
    for (key, value) in &message.headers {
        headers = headers.insert(Header {
            key,
            value: Some(value.as_bytes()),
        });
    }
    let mut record = FutureRecord::to(topic)
        .payload(message.payload.as_ref())
        .headers(headers);
    if let Some(key) = &message.key {
        record = record.key(key.as_str());
    }
    producer
        .send(record, Timeout::After(options.delivery_timeout))
        .await
        .map_err(|(error, _)| error)
        .expect("publish");
}

/// The producer, options and topic of the raw side under `prefix`, after one record
/// published before the clock starts.
async fn warm_producer(servers: &str, prefix: &str) -> Arc<(FutureProducer, KafkaOptions, String)> {
    let options = options(servers, prefix);
    let topic = settings(servers, prefix).topic_names().topic(EVENT_TYPE);
    create_topic(&options, &topic).await;
    let producer = producer(&options);
    raw_send(&producer, &options, &topic, &event(EVENTS)).await;
    Arc::new((producer, options, topic))
}

async fn raw_publish(servers: &str, prefix: &str) -> f64 {
    let raw = warm_producer(servers, prefix).await;
    publish_rate(EVENTS, PUBLISHERS, move |n| {
        let raw = Arc::clone(&raw);
        async move {
            let (producer, options, topic) = &*raw;
            raw_send(producer, options, topic, &event(n)).await;
        }
    })
    .await
}

async fn raw_publish_batch(servers: &str, prefix: &str) -> f64 {
    let raw = warm_producer(servers, prefix).await;
    batch_rate(EVENTS, move |events| {
        let raw = Arc::clone(&raw);
        async move {
            let (producer, options, topic) = &*raw;
            futures::future::join_all(
                events
                    .iter()
                    .map(|event| raw_send(producer, options, topic, event)),
            )
            .await;
        }
    })
    .await
}

/// One member: each record decoded, then its offset stored for the background commit.
async fn raw_member(consumer: Arc<StreamConsumer>, counter: Arc<Counter>) {
    loop {
        let record = consumer.recv().await.expect("receive");
        counter.handled(decoded_number(record.payload().expect("a payload")));
        consumer
            .store_offset_from_message(&record)
            .expect("store offset");
    }
}

async fn raw_consume(servers: &str, prefix: &str) -> f64 {
    let options = options(servers, prefix);
    let topics = settings(servers, prefix).topic_names();
    let (topic, group) = (
        topics.topic(EVENT_TYPE),
        topics.handler_subscription(EVENT_TYPE, GROUP),
    );
    let consumers: Vec<Arc<StreamConsumer>> = (0..MEMBERS)
        .map(|_| {
            let consumer = consumer(&options, &group);
            consumer.subscribe(&[&topic]).expect("subscribe");
            Arc::new(consumer)
        })
        .collect();
    let counter = Arc::new(Counter::new(RECORDS));
    let members: Vec<_> = consumers
        .iter()
        .map(|consumer| tokio::spawn(raw_member(Arc::clone(consumer), Arc::clone(&counter))))
        .collect();
    let rate = counter.rate_from_first().await;
    for member in members {
        member.abort();
        let _ = member.await;
    }
    // Leaving the group blocks.
    tokio::task::spawn_blocking(move || drop(consumers))
        .await
        .expect("close consumers");
    rate
}

/// The Kafka backend and the raw client, on one broker.
struct Kafka {
    servers: String,
    /// Names this run's topics apart from any other's.
    run: String,
}

impl Throughput for Kafka {
    type Round = Prefixes;

    const SIDES: &'static [Side] = &[Side::Bus, Side::Raw];

    fn round(&self, round: usize, side: Side) -> Prefixes {
        Prefixes::new(&self.run, round, side)
    }

    async fn publish(&self, side: Side, prefixes: &Prefixes) -> f64 {
        let (servers, prefix) = (&self.servers, &prefixes.publish);
        match side {
            Side::Bus => bus_publish_rate(warm_bus(servers, prefix).await, EVENTS).await,
            _ => raw_publish(servers, prefix).await,
        }
    }

    async fn publish_batch(&self, side: Side, prefixes: &Prefixes) -> Option<f64> {
        let (servers, prefix) = (&self.servers, &prefixes.batch);
        Some(match side {
            Side::Bus => bus_batch_rate(warm_bus(servers, prefix).await, EVENTS).await,
            _ => raw_publish_batch(servers, prefix).await,
        })
    }

    /// Each bus member is a bus of its own (its own producer and consumer); the bus stores a
    /// record's offset once its handler is done.
    async fn consume(&self, side: Side, prefixes: &Prefixes) -> f64 {
        let (servers, prefix) = (&self.servers, &prefixes.publish);
        match side {
            Side::Bus => {
                bus_consume_rate(
                    RECORDS,
                    async || bus(servers, prefix).await,
                    |member| {
                        member
                            .subscription(EVENT_TYPE, GROUP)
                            .max_in_flight(IN_FLIGHT)
                    },
                )
                .await
            }
            _ => raw_consume(servers, prefix).await,
        }
    }

    async fn delete(&self, _: Side, prefixes: &Prefixes) {
        delete(&self.servers, &prefixes.publish).await;
        delete(&self.servers, &prefixes.batch).await;
    }
}

/// Deletes the topics a side may have made under `prefix`: its topic, and the bus's retry
/// and dead-letter topics.
async fn delete(servers: &str, prefix: &str) {
    let settings = settings(servers, prefix);
    let topics = settings.topic_names();
    let topic = topics.topic(EVENT_TYPE);
    let retry = format!(
        "{topic}.retry.{}",
        topics.handler_subscription(EVENT_TYPE, GROUP)
    );
    let admin: AdminClient<DefaultClientContext> = common_config(&options(servers, prefix))
        .create()
        .expect("admin");
    let names = [topic.as_str(), retry.as_str(), topics.dead_letter_topic()];
    // A topic a side did not make is reported missing, and that is fine.
    let _ = admin.delete_topics(&names, &AdminOptions::new()).await;
}

#[tokio::main]
async fn main() {
    let kafka = Kafka {
        servers: std::env::var("KAFKA_BOOTSTRAP_SERVERS")
            .unwrap_or_else(|_| "127.0.0.1:9092".to_owned()),
        run: uuid::Uuid::now_v7().simple().to_string(),
    };
    measure(&kafka, ROUNDS).await.print(
        &format!("Kafka (Tansu), {PARTITIONS} partitions"),
        EVENTS,
        "raw rdkafka",
        "of one group",
    );
}
