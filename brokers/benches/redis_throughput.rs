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
//!   consumes the stream its publish round wrote, so consuming is measured alone.
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

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Counter, concurrent_rate, event, publish_rate, xadd};
use event_bus_brokers::redis::{RedisBroker, RedisOptions};
use event_bus_core::{BusSettings, EventBus, EventEnvelope, handler_fn};
use omniqueue::backends::{RedisBackend, RedisConfig};
use redis::aio::MultiplexedConnection;
use redis::streams::StreamReadReply;

const ROUNDS: usize = 5;
const EVENTS: u64 = 20_000;
const PUBLISHERS: u64 = 64;
const BATCH: u64 = 100;
const BATCH_PUBLISHERS: u64 = 4;
const MEMBERS: usize = 4;
/// Entries one member reads at a time, and handles at once.
const READ: usize = 16;
const GROUP: &str = "bench";

/// The keys one round of one side uses.
struct Keys {
    /// Bus: the topic prefix; raw and omniqueue: the stream's name.
    name: String,
    /// The same for the batch publish round.
    batch: String,
}

impl Keys {
    fn new(run: &str, round: usize, side: &str) -> Self {
        let name = format!("bench-{run}-{round}-{side}");
        Self {
            batch: format!("{name}-batch"),
            name,
        }
    }
}

/// Events per second of `EVENTS` published in batches of `BATCH` by `BATCH_PUBLISHERS` tasks.
async fn batch_rate<F, Fut>(publish: F) -> f64
where
    F: Fn(Range<u64>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    concurrent_rate(EVENTS, BATCH_PUBLISHERS, |publisher| {
        let publish = publish.clone();
        async move {
            let step = (BATCH * BATCH_PUBLISHERS) as usize;
            for first in (publisher * BATCH..EVENTS).step_by(step) {
                publish(first..(first + BATCH).min(EVENTS)).await;
            }
        }
    })
    .await
}

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

async fn bus_publish(url: &str, prefix: &str) -> f64 {
    let bus = Arc::new(bus(url, prefix).await);
    let rate = publish_rate(EVENTS, PUBLISHERS, {
        let bus = Arc::clone(&bus);
        move |n| {
            let bus = Arc::clone(&bus);
            async move { bus.publish(&event(n)).await.expect("publish") }
        }
    })
    .await;
    bus.shutdown().await.expect("shutdown");
    rate
}

async fn bus_publish_batch(url: &str, prefix: &str) -> f64 {
    let bus = Arc::new(bus(url, prefix).await);
    let rate = batch_rate({
        let bus = Arc::clone(&bus);
        move |range| {
            let bus = Arc::clone(&bus);
            async move {
                let events: Vec<EventEnvelope> = range.map(event).collect();
                for outcome in bus.publish_batch(&events).await {
                    outcome.expect("publish");
                }
            }
        }
    })
    .await;
    bus.shutdown().await.expect("shutdown");
    rate
}

/// Each member is a bus of its own (its own broker and connections); the bus decodes each
/// delivery before the handler sees it and acknowledges it after.
async fn bus_consume(url: &str, prefix: &str) -> f64 {
    let mut members = Vec::with_capacity(MEMBERS);
    for _ in 0..MEMBERS {
        members.push(bus(url, prefix).await);
    }
    let counter = Arc::new(Counter::new(EVENTS));
    let started = Instant::now();
    for member in &members {
        let config = member
            .subscription("bench.event", GROUP)
            .max_in_flight(READ);
        let counter = Arc::clone(&counter);
        let handler = handler_fn(move |_| {
            counter.handled();
            async { Ok(()) }
        });
        member.subscribe(config, handler).await.expect("subscribe");
    }
    counter.wait_for_all().await;
    let rate = EVENTS as f64 / started.elapsed().as_secs_f64();
    for member in members {
        member.shutdown().await.expect("shutdown");
    }
    rate
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
    batch_rate(move |range| {
        let (mut conn, stream) = (conn.clone(), Arc::clone(&stream));
        async move {
            let mut pipe = redis::pipe();
            for n in range {
                let message = event(n).to_message().expect("encode");
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
                let _: EventEnvelope = serde_json::from_slice(payload).expect("decode");
                counter.handled();
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
    let started = Instant::now();
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
    counter.wait_for_all().await;
    let rate = EVENTS as f64 / started.elapsed().as_secs_f64();
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
    let mut conn = connection(url).await;
    let counter = Arc::new(Counter::new(EVENTS));
    let started = Instant::now();
    create_group(&mut conn, queue).await;
    let members: Vec<_> = consumers
        .into_iter()
        .map(|mut consumer| {
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                loop {
                    let deliveries = consumer
                        .receive_all(READ, Duration::from_millis(100))
                        .await
                        .expect("receive");
                    let acks = deliveries.into_iter().map(|delivery| {
                        let payload = delivery.borrow_payload().expect("a payload");
                        let _: EventEnvelope = serde_json::from_slice(payload).expect("decode");
                        counter.handled();
                        async move {
                            delivery
                                .ack()
                                .await
                                .map_err(|(error, _)| error)
                                .expect("ack")
                        }
                    });
                    futures::future::join_all(acks).await;
                }
            })
        })
        .collect();
    counter.wait_for_all().await;
    let rate = EVENTS as f64 / started.elapsed().as_secs_f64();
    for member in members {
        member.abort();
    }
    rate
}

async fn delete(url: &str, keys: &[String]) {
    let _: i64 = redis::cmd("DEL")
        .arg(keys)
        .query_async(&mut connection(url).await)
        .await
        .expect("delete bench keys");
}

#[derive(Clone, Copy)]
enum Side {
    Bus,
    Raw,
    Omniqueue,
}

const SIDES: [Side; 3] = [Side::Bus, Side::Raw, Side::Omniqueue];

impl Side {
    fn index(self) -> usize {
        self as usize
    }

    fn name(self) -> &'static str {
        match self {
            Side::Bus => "bus",
            Side::Raw => "raw",
            Side::Omniqueue => "omniqueue",
        }
    }

    /// Every key this side's round may leave behind.
    fn keys(self, url: &str, keys: &Keys) -> Vec<String> {
        match self {
            Side::Bus => {
                let topics = settings(url, &keys.name).topic_names();
                let stream = topics.topic("bench.event");
                let group = topics.handler_subscription("bench.event", GROUP);
                vec![
                    format!("{stream}:delayed:{group}"),
                    stream,
                    bus_stream(url, &keys.batch),
                ]
            }
            Side::Raw => vec![keys.name.clone(), keys.batch.clone()],
            Side::Omniqueue => vec![
                keys.name.clone(),
                format!("{}:delayed", keys.name),
                format!("{}:delayed-lock", keys.name),
            ],
        }
    }

    async fn publish(self, url: &str, keys: &Keys) -> f64 {
        match self {
            Side::Bus => bus_publish(url, &keys.name).await,
            Side::Raw => raw_publish(url, &keys.name).await,
            Side::Omniqueue => omniqueue_publish(url, &keys.name).await,
        }
    }

    /// `None`: the side has no batch publish.
    async fn publish_batch(self, url: &str, keys: &Keys) -> Option<f64> {
        match self {
            Side::Bus => Some(bus_publish_batch(url, &keys.batch).await),
            Side::Raw => Some(raw_publish_batch(url, &keys.batch).await),
            Side::Omniqueue => None,
        }
    }

    async fn consume(self, url: &str, keys: &Keys) -> f64 {
        match self {
            Side::Bus => bus_consume(url, &keys.name).await,
            Side::Raw => raw_consume(url, &keys.name).await,
            Side::Omniqueue => omniqueue_consume(url, &keys.name).await,
        }
    }
}

/// Rates per side, in `SIDES` order.
#[derive(Default)]
struct Rates([Vec<f64>; 3]);

impl Rates {
    fn push(&mut self, side: Side, rate: f64) {
        self.0[side.index()].push(rate);
    }

    /// Median, lowest and highest of `side`, if it was measured.
    fn summary(&self, side: Side) -> Option<(f64, f64, f64)> {
        let mut rates = self.0[side.index()].clone();
        rates.sort_by(f64::total_cmp);
        let median = *rates.get(rates.len() / 2)?;
        Some((median, rates[0], rates[rates.len() - 1]))
    }

    fn row(&self, name: &str) -> String {
        let cell = |side| match self.summary(side) {
            Some((median, low, high)) => format!("{median:.0} ({low:.0}–{high:.0})"),
            None => "—".to_owned(),
        };
        let ratio = |other| match (self.summary(Side::Bus), self.summary(other)) {
            (Some((bus, _, _)), Some((other, _, _))) => format!("{:.2}", bus / other),
            _ => "—".to_owned(),
        };
        format!(
            "| {name} | {} | {} | {} | {} | {} |",
            cell(Side::Bus),
            cell(Side::Raw),
            cell(Side::Omniqueue),
            ratio(Side::Raw),
            ratio(Side::Omniqueue)
        )
    }
}

/// The sides in the order they go in `round`: each goes first in turn.
fn order(round: usize) -> impl Iterator<Item = Side> {
    (0..SIDES.len()).map(move |i| SIDES[(round + i) % SIDES.len()])
}

#[tokio::main]
async fn main() {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let url =
        std::env::var("REDIS_EVENT_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let run = uuid::Uuid::now_v7().simple().to_string();
    let (mut publish, mut batch, mut consume) =
        (Rates::default(), Rates::default(), Rates::default());
    for round in 0..ROUNDS {
        let keys = SIDES.map(|side| Keys::new(&run, round, side.name()));
        for side in order(round) {
            publish.push(side, side.publish(&url, &keys[side.index()]).await);
        }
        for side in order(round) {
            if let Some(rate) = side.publish_batch(&url, &keys[side.index()]).await {
                batch.push(side, rate);
            }
        }
        for side in order(round) {
            consume.push(side, side.consume(&url, &keys[side.index()]).await);
        }
        for side in SIDES {
            delete(&url, &side.keys(&url, &keys[side.index()])).await;
        }
        eprintln!("round {} of {ROUNDS} done", round + 1);
    }

    println!(
        "Redis Streams, {ROUNDS} interleaved rounds of {EVENTS} events of {} bytes; load average at start: {}",
        event(0).to_message().expect("encode").size(),
        load.trim()
    );
    println!();
    println!(
        "| events/s, median (lowest–highest) | bus | raw redis | omniqueue | bus/raw | bus/omniqueue |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "{}",
        publish.row(&format!("publish, {PUBLISHERS} concurrent publishers"))
    );
    println!(
        "{}",
        batch.row(&format!(
            "publish_batch of {BATCH}, {BATCH_PUBLISHERS} concurrent publishers"
        ))
    );
    println!(
        "{}",
        consume.row(&format!(
            "consume, {MEMBERS} members acking, {READ} per read"
        ))
    );
}
