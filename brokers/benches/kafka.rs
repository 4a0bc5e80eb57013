//! The Kafka backend against the raw `rdkafka` client doing the same work, in one run: a
//! topic of 3 partitions created with the admin API, records keyed by aggregate id, an
//! idempotent producer with `acks=all` and no linger awaiting each record's acknowledgement,
//! one consumer-group member that decodes each record and stores its offset for the
//! background commit. Measures publish rate, end-to-end rate and publish-to-handle latency of
//! paced events.
//!
//! `cargo bench -p event-bus-brokers --features kafka --bench kafka` (needs a broker on
//! KAFKA_BOOTSTRAP_SERVERS, default `127.0.0.1:9092`; fresh topics per run).

mod common;

use std::sync::Arc;

use common::{Clock, Measured, event, event_number, print_table, run};
use event_bus_brokers::kafka::{KafkaBroker, KafkaOptions};
use event_bus_core::{BusSettings, EventBus, Message, handler_fn};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{ClientConfig, Message as _};

fn settings(servers: &str, prefix: &str) -> BusSettings {
    BusSettings::from_vars([
        ("KAFKA_BOOTSTRAP_SERVERS", servers),
        ("EVENT_BUS_TOPIC_PREFIX", prefix),
        ("KAFKA_LINGER_MS", "0"),
        ("KAFKA_SESSION_TIMEOUT_MS", "6000"),
    ])
    .expect("settings")
}

async fn through_the_bus(servers: &str, prefix: &str) -> Measured {
    let settings = settings(servers, prefix);
    let broker = KafkaBroker::connect(KafkaOptions::from_settings(&settings).expect("settings"))
        .await
        .expect("connect");
    let bus = EventBus::new(Arc::new(broker), settings);
    let clock = Arc::new(Clock::default());
    let handler = {
        let clock = Arc::clone(&clock);
        handler_fn(move |event| {
            clock.handled(event.payload["n"].as_u64().expect("n"));
            async { Ok(()) }
        })
    };
    let config = bus.subscription("bench.event", "bench").max_in_flight(16);
    bus.subscribe(config, handler).await.expect("subscribe");
    let measured = run(&clock, async |n| {
        bus.publish(&event(n)).await.expect("publish")
    })
    .await;
    bus.shutdown().await.expect("shutdown");
    measured
}

async fn through_the_raw_client(servers: &str, prefix: &str) -> Measured {
    let settings = settings(servers, prefix);
    let topic = settings.topic_names().topic("bench.event");
    let mut common = ClientConfig::new();
    common
        .set("bootstrap.servers", servers)
        .set("log_level", "3");
    let admin: AdminClient<DefaultClientContext> = common.create().expect("admin");
    admin
        .create_topics(
            &[NewTopic::new(&topic, 3, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create topic")
        .into_iter()
        .for_each(|result| {
            result.expect("topic created");
        });
    let producer: FutureProducer = common
        .clone()
        .set("acks", "all")
        .set("linger.ms", "0")
        .set("batch.size", "1000000")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "30000")
        .create()
        .expect("producer");
    let consumer: StreamConsumer = common
        .clone()
        .set("group.id", format!("{prefix}-raw"))
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "500")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "2000")
        .create()
        .expect("consumer");
    consumer.subscribe(&[&topic]).expect("subscribe");
    let consumer = Arc::new(consumer);

    let clock = Arc::new(Clock::default());
    let reading = {
        let clock = Arc::clone(&clock);
        let consumer = Arc::clone(&consumer);
        tokio::spawn(async move {
            loop {
                let record = consumer.recv().await.expect("receive");
                clock.handled(event_number(record.payload().expect("payload")));
                consumer
                    .store_offset_from_message(&record)
                    .expect("store offset");
            }
        })
    };
    let measured = run(&clock, async |n| {
        let message: Message = event(n).to_message().expect("encode");
        let mut headers = OwnedHeaders::new();
        for (key, value) in &message.headers {
            headers = headers.insert(Header {
                key,
                value: Some(value.as_bytes()),
            });
        }
        let mut record = FutureRecord::to(&topic)
            .payload(message.payload.as_ref())
            .headers(headers);
        if let Some(key) = &message.key {
            record = record.key(key.as_str());
        }
        producer
            .send(record, Timeout::Never)
            .await
            .map_err(|(error, _)| error)
            .expect("publish");
    })
    .await;
    reading.abort();
    let _ = reading.await;
    tokio::task::spawn_blocking(move || drop(consumer))
        .await
        .expect("close consumer");
    measured
}

#[tokio::main]
async fn main() {
    let servers =
        std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".to_owned());
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let bus = through_the_bus(&servers, &format!("bench-{run_id}")).await;
    let raw = through_the_raw_client(&servers, &format!("bench-raw-{run_id}")).await;
    print_table("Kafka (Tansu)", &bus, &raw);
}
