//! Throughput of the Redis Streams backend against the raw `redis` client and `omniqueue`'s
//! Redis Streams backend doing the same work, in one run of interleaved rounds (the side that
//! goes first changes every round):
//!
//! - publish: 64 concurrent publishing tasks, each event encoded as the bus's envelope JSON and
//!   written with one `XADD` awaited on its own;
//! - publish_batch: 4 concurrent tasks publishing batches of 100 (the bus's `publish_batch`
//!   against a pipeline of 100 `XADD`s; omniqueue has no batch send);
//! - consume: 4 members of one consumer group reading 16 entries at a time, each entry decoded
//!   into an `EventEnvelope` and acknowledged on its own, the 16 of a read at once. Each side
//!   consumes the stream its publish round wrote, so consuming is measured alone (after a 3 s pause
//!   that lets the broker settle), from the first event handled to the last.
//!
//! Where omniqueue differs (its defaults, not choices of this bench): it stores only the
//! payload and a `num_receives` field (no key, no headers); it acknowledges with `XACK` and
//! `XDEL` (the bus and the raw side only `XACK`); it does not create the consumer group (this
//! bench does); it takes a connection from a `bb8` pool for every command, so it is given a
//! pool as large as the concurrency asked of it, where the bus and the raw side multiplex one
//! connection.
//!
//! Prints a markdown table: each side's median events/s over the rounds with the spread
//! (lowest–highest), and the ratios of the medians.
//!
//! `cargo bench -p event-bus-brokers --bench redis_throughput` (needs Redis on
//! REDIS_EVENT_URL, default `redis://127.0.0.1:6379`; fresh keys per round, deleted after it).

mod common;

use std::sync::Arc;

use common::{
    Counter, MEMBERS, PUBLISHERS, Prefixes, Side, Throughput, batch_rate, bus_batch_rate,
    bus_consume_rate, bus_publish_rate, decoded_number, event, measure, omniqueue_consume_rate,
    publish_rate, xadd,
};
use event_bus_brokers::redis::{RedisBroker, RedisOptions};
use event_bus_core::{BusSettings, EventBus};
use omniqueue::backends::{RedisBackend, RedisConfig};
use redis::aio::MultiplexedConnection;
use redis::streams::StreamReadReply;

const ROUNDS: usize = 5;
const EVENTS: u64 = 20_000;
/// Entries one member reads at a time, and handles at once.
const READ: usize = 16;
const GROUP: &str = "bench";

fn settings(url: &str, prefix: &str) -> BusSettings {
    BusSettings::from_vars([("EVENT_BUS_TOPIC_PREFIX", prefix), ("REDIS_EVENT_URL", url)])
        .expect("settings")
}

/// The stream the bus writes `bench.event` to under `prefix`.
fn bus_stream(url: &str, prefix: &str) -> String {
    settings(url, prefix).topic_names().topic("bench.event")
}

async fn bus(url: &str, prefix: &str) -> EventBus {
    let settings = settings(url, prefix);
    let options = RedisOptions::from_settings(&settings).expect("options");
    let broker = RedisBroker::connect(options).await.expect("connect");
    EventBus::new(Arc::new(broker), settings)
}

/// Each member is a bus of its own (its own broker and connections).
async fn bus_consume(url: &str, prefix: &str) -> f64 {
    bus_consume_rate(
        EVENTS,
        async || bus(url, prefix).await,
        |member| {
            member
                .subscription("bench.event", GROUP)
                .max_in_flight(READ)
        },
    )
    .await
}

async fn connection(url: &str) -> MultiplexedConnection {
    redis::Client::open(url)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}

async fn raw_publish(url: &str, stream: &str) -> f64 {
    let conn = connection(url).await;
    let stream: Arc<str> = stream.into();
    publish_rate(EVENTS, PUBLISHERS, move |n| {
        let (mut conn, stream) = (conn.clone(), Arc::clone(&stream));
        async move {
            let message = event(n).to_message().expect("encode");
            let _: String = xadd(&stream, &message)
                .query_async(&mut conn)
                .await
                .expect("xadd");
        }
    })
    .await
}

async fn raw_publish_batch(url: &str, stream: &str) -> f64 {
    let conn = connection(url).await;
    let stream: Arc<str> = stream.into();
    batch_rate(EVENTS, move |events| {
        let (mut conn, stream) = (conn.clone(), Arc::clone(&stream));
        async move {
            let mut pipe = redis::pipe();
            for event in &events {
                let message = event.to_message().expect("encode");
                pipe.add_command(xadd(&stream, &message));
            }
            let _: Vec<String> = pipe.query_async(&mut conn).await.expect("pipeline");
        }
    })
    .await
}

async fn create_group(conn: &mut MultiplexedConnection, stream: &str) {
    let () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await
        .expect("group");
}

/// One member: read `READ` new entries, decode each, acknowledge each with its own `XACK`.
async fn raw_member(
    mut conn: MultiplexedConnection,
    stream: String,
    member: usize,
    counter: Arc<Counter>,
) {
    let consumer = format!("raw-{member}");
    loop {
        let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg(&consumer)
            .arg("COUNT")
            .arg(READ)
            .arg("BLOCK")
            .arg(100)
            .arg("STREAMS")
            .arg(&stream)
            .arg(">")
            .query_async(&mut conn)
            .await
            .expect("read");
        let acks = reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .map(|entry| {
                let Some(redis::Value::BulkString(payload)) = entry.map.get("payload") else {
                    panic!("an entry without a payload");
                };
                counter.handled(decoded_number(payload));
                let (mut conn, stream) = (conn.clone(), stream.clone());
                async move {
                    let _: i64 = redis::cmd("XACK")
                        .arg(&stream)
                        .arg(GROUP)
                        .arg(&entry.id)
                        .query_async(&mut conn)
                        .await
                        .expect("ack");
                }
            });
        futures::future::join_all(acks).await;
    }
}

async fn raw_consume(url: &str, stream: &str) -> f64 {
    let mut conns = Vec::with_capacity(MEMBERS);
    for _ in 0..MEMBERS {
        conns.push(connection(url).await);
    }
    let counter = Arc::new(Counter::new(EVENTS));
    create_group(&mut conns[0], stream).await;
    let members: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(member, conn)| {
            tokio::spawn(raw_member(
                conn,
                stream.to_owned(),
                member,
                Arc::clone(&counter),
            ))
        })
        .collect();
    let rate = counter.rate_from_first().await;
    for member in members {
        member.abort();
    }
    rate
}

/// omniqueue's settings for `queue`: the payload under `payload` as the bus writes it, an ack
/// deadline of 30 s as the bus's default, no dead-letter queue.
fn omniqueue_config(url: &str, queue: &str, consumer: String, connections: usize) -> RedisConfig {
    RedisConfig {
        dsn: url.to_owned(),
        max_connections: u16::try_from(connections).expect("a pool size"),
        reinsert_on_nack: false,
        queue_key: queue.to_owned(),
        delayed_queue_key: format!("{queue}:delayed"),
        delayed_lock_key: format!("{queue}:delayed-lock"),
        consumer_group: GROUP.to_owned(),
        consumer_name: consumer,
        payload_key: "payload".to_owned(),
        ack_deadline_ms: 30_000,
        dlq_config: None,
        sentinel_config: None,
    }
}

/// omniqueue sends the same envelope JSON the bus and the raw side write as `payload`.
async fn omniqueue_publish(url: &str, queue: &str) -> f64 {
    let config = omniqueue_config(url, queue, "publisher".to_owned(), PUBLISHERS as usize);
    let producer = Arc::new(
        RedisBackend::builder(config)
            .build_producer()
            .await
            .expect("producer"),
    );
    publish_rate(EVENTS, PUBLISHERS, move |n| {
        let producer = Arc::clone(&producer);
        async move {
            let message = event(n).to_message().expect("encode");
            producer.send_raw(&message.payload).await.expect("send");
        }
    })
    .await
}

async fn omniqueue_consume(url: &str, queue: &str) -> f64 {
    create_group(&mut connection(url).await, queue).await;
    let mut consumers = Vec::with_capacity(MEMBERS);
    for member in 0..MEMBERS {
        let config = omniqueue_config(url, queue, format!("omniqueue-{member}"), READ + 1);
        consumers.push(
            RedisBackend::builder(config)
                .build_consumer()
                .await
                .expect("consumer"),
        );
    }
    omniqueue_consume_rate(EVENTS, consumers, READ).await
}

/// The Redis Streams backend, the raw client and omniqueue, on one server.
struct Redis {
    url: String,
    /// Names this run's keys apart from any other's.
    run: String,
}

impl Throughput for Redis {
    type Round = Prefixes;

    const SIDES: &'static [Side] = &[Side::Bus, Side::Raw, Side::Omniqueue];

    fn round(&self, round: usize, side: Side) -> Prefixes {
        Prefixes::new(&self.run, round, side)
    }

    async fn publish(&self, side: Side, keys: &Prefixes) -> f64 {
        let url = &self.url;
        match side {
            Side::Bus => bus_publish_rate(bus(url, &keys.publish).await, EVENTS).await,
            Side::Raw => raw_publish(url, &keys.publish).await,
            Side::Omniqueue => omniqueue_publish(url, &keys.publish).await,
        }
    }

    async fn publish_batch(&self, side: Side, keys: &Prefixes) -> Option<f64> {
        let url = &self.url;
        match side {
            Side::Bus => Some(bus_batch_rate(bus(url, &keys.batch).await, EVENTS).await),
            Side::Raw => Some(raw_publish_batch(url, &keys.batch).await),
            Side::Omniqueue => None,
        }
    }

    async fn consume(&self, side: Side, keys: &Prefixes) -> f64 {
        let url = &self.url;
        match side {
            Side::Bus => bus_consume(url, &keys.publish).await,
            Side::Raw => raw_consume(url, &keys.publish).await,
            Side::Omniqueue => omniqueue_consume(url, &keys.publish).await,
        }
    }

    /// Deletes every key the side's round may leave behind.
    async fn delete(&self, side: Side, keys: &Prefixes) {
        let url = &self.url;
        let names = match side {
            Side::Bus => {
                let topics = settings(url, &keys.publish).topic_names();
                let stream = topics.topic("bench.event");
                let group = topics.handler_subscription("bench.event", GROUP);
                vec![
                    format!("{stream}:delayed:{group}"),
                    stream,
                    bus_stream(url, &keys.batch),
                ]
            }
            Side::Raw => vec![keys.publish.clone(), keys.batch.clone()],
            Side::Omniqueue => vec![
                keys.publish.clone(),
                format!("{}:delayed", keys.publish),
                format!("{}:delayed-lock", keys.publish),
            ],
        };
        let _: i64 = redis::cmd("DEL")
            .arg(names)
            .query_async(&mut connection(url).await)
            .await
            .expect("delete bench keys");
    }
}

#[tokio::main]
async fn main() {
    let redis = Redis {
        url: std::env::var("REDIS_EVENT_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned()),
        run: uuid::Uuid::now_v7().simple().to_string(),
    };
    measure(&redis, ROUNDS).await.print(
        "Redis Streams",
        EVENTS,
        "raw redis",
        &format!("acking, {READ} per read"),
    );
}
