//! The Redis Streams backend against the raw `redis` client doing the same work, in one run:
//! publish rate (one awaited XADD per event), end-to-end rate (publish until every event is
//! handled and acknowledged by one consumer), and publish-to-handle latency of paced events.
//!
//! `cargo bench -p event-bus-brokers --bench redis` (needs Redis on REDIS_EVENT_URL,
//! default `redis://127.0.0.1:6379`; uses fresh stream names and deletes them afterwards).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use event_bus_brokers::redis::{RedisBroker, RedisOptions};
use event_bus_core::{BusSettings, EventBus, EventEnvelope, Message, handler_fn};
use redis::streams::StreamReadReply;
use tokio::sync::Notify;

const EVENTS: u64 = 10_000;
const PACED_EVENTS: u64 = 1_000;
const PACE: Duration = Duration::from_millis(1);

/// When each event was published, and how long after that it was handled.
#[derive(Default)]
struct Clock {
    published: Mutex<HashMap<u64, Instant>>,
    latencies: Mutex<Vec<Duration>>,
    handled: Notify,
}

impl Clock {
    fn published(&self, n: u64) {
        self.published.lock().unwrap().insert(n, Instant::now());
    }

    fn handled(&self, n: u64) {
        let published = self.published.lock().unwrap().get(&n).copied();
        if let Some(published) = published {
            self.latencies.lock().unwrap().push(published.elapsed());
            self.handled.notify_one();
        }
    }

    async fn wait_for(&self, count: usize) {
        while self.latencies.lock().unwrap().len() < count {
            tokio::time::timeout(Duration::from_secs(60), self.handled.notified())
                .await
                .expect("events handled in time");
        }
    }

    fn reset(&self) -> Vec<Duration> {
        self.published.lock().unwrap().clear();
        std::mem::take(&mut *self.latencies.lock().unwrap())
    }
}

/// What one side measured.
struct Measured {
    publish_per_sec: f64,
    end_to_end_per_sec: f64,
    p50: Duration,
    p99: Duration,
}

fn event(n: u64) -> EventEnvelope {
    EventEnvelope::builder(
        "bench.event",
        serde_json::json!({"n": n, "name": "Zoë", "padding": "x".repeat(200)}),
    )
    .source("bench")
    .aggregate("thing", format!("agg-{}", n % 64), n)
    .build()
}

fn event_number(payload: &[u8]) -> u64 {
    let envelope: serde_json::Value = serde_json::from_slice(payload).expect("a JSON envelope");
    envelope["data"]["n"].as_u64().expect("n")
}

async fn run(clock: &Clock, mut publish: impl AsyncFnMut(u64)) -> Measured {
    let started = Instant::now();
    for n in 0..EVENTS {
        clock.published(n);
        publish(n).await;
    }
    let publish_per_sec = EVENTS as f64 / started.elapsed().as_secs_f64();
    clock.wait_for(EVENTS as usize).await;
    let end_to_end_per_sec = EVENTS as f64 / started.elapsed().as_secs_f64();
    clock.reset();

    for n in EVENTS..EVENTS + PACED_EVENTS {
        clock.published(n);
        publish(n).await;
        tokio::time::sleep(PACE).await;
    }
    clock.wait_for(PACED_EVENTS as usize).await;
    let mut latencies = clock.reset();
    latencies.sort();
    let percentile =
        |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    Measured {
        publish_per_sec,
        end_to_end_per_sec,
        p50: percentile(0.50),
        p99: percentile(0.99),
    }
}

async fn through_the_bus(url: &str, topic_prefix: &str) -> Measured {
    let options = RedisOptions {
        url: url.to_owned(),
        ack_deadline: Duration::from_secs(30),
        stream_max_len: None,
    };
    let broker = Arc::new(RedisBroker::connect(options).await.expect("connect"));
    let settings =
        BusSettings::from_vars([("EVENT_BUS_TOPIC_PREFIX", topic_prefix)]).expect("settings");
    let bus = EventBus::new(broker, settings);
    let clock = Arc::new(Clock::default());
    let handler = {
        let clock = Arc::clone(&clock);
        handler_fn(move |event| {
            clock.handled(event.payload["n"].as_u64().expect("n"));
            async { Ok(()) }
        })
    };
    let config = bus.subscription("bench.event", "bench").max_in_flight(16);
    bus.subscribe(config.clone(), handler)
        .await
        .expect("subscribe");
    let measured = run(&clock, async |n| {
        bus.publish(&event(n)).await.expect("publish")
    })
    .await;
    bus.shutdown().await.expect("shutdown");
    delete(
        url,
        &[
            config.topic.clone(),
            format!("{}:delayed:{}", config.topic, config.consumer_group),
        ],
    )
    .await;
    measured
}

async fn delete(url: &str, keys: &[String]) {
    let client = redis::Client::open(url).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let _: i64 = redis::cmd("DEL")
        .arg(keys)
        .query_async(&mut conn)
        .await
        .expect("delete bench keys");
}

async fn through_the_raw_client(url: &str, stream: &str) -> Measured {
    let client = redis::Client::open(url).expect("url");
    let mut publisher = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let mut consumer = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg("bench")
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut consumer)
        .await
        .expect("group");
    let clock = Arc::new(Clock::default());
    let stop = Arc::new(Notify::new());
    let reading = {
        let (clock, stop, stream) = (Arc::clone(&clock), Arc::clone(&stop), stream.to_owned());
        tokio::spawn(async move {
            loop {
                let mut read = redis::cmd("XREADGROUP");
                read.arg("GROUP")
                    .arg("bench")
                    .arg("raw")
                    .arg("COUNT")
                    .arg(16)
                    .arg("BLOCK")
                    .arg(100)
                    .arg("STREAMS")
                    .arg(&stream)
                    .arg(">");
                let read = read.query_async::<Option<StreamReadReply>>(&mut consumer);
                let reply = tokio::select! {
                    () = stop.notified() => return,
                    reply = read => reply.expect("read"),
                };
                for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
                    let Some(redis::Value::BulkString(payload)) = entry.map.get("payload") else {
                        continue;
                    };
                    clock.handled(event_number(payload));
                    let _: i64 = redis::cmd("XACK")
                        .arg(&stream)
                        .arg("bench")
                        .arg(&entry.id)
                        .query_async(&mut consumer)
                        .await
                        .expect("ack");
                }
            }
        })
    };
    let measured = run(&clock, async |n| {
        let message: Message = event(n).to_message().expect("encode");
        let mut cmd = redis::cmd("XADD");
        cmd.arg(stream)
            .arg("*")
            .arg("payload")
            .arg(message.payload.as_ref());
        if let Some(key) = &message.key {
            cmd.arg("key").arg(key);
        }
        for (name, value) in &message.headers {
            cmd.arg(format!("h:{name}")).arg(value);
        }
        let _: String = cmd.query_async(&mut publisher).await.expect("xadd");
    })
    .await;
    stop.notify_one();
    reading.await.expect("reader");
    delete(url, &[stream.to_owned()]).await;
    measured
}

#[tokio::main]
async fn main() {
    let url =
        std::env::var("REDIS_EVENT_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let bus = through_the_bus(&url, &format!("bench-{run_id}")).await;
    let raw = through_the_raw_client(&url, &format!("bench-raw-{run_id}")).await;

    println!(
        "Redis Streams, {EVENTS} events of {} bytes; latency over {PACED_EVENTS} paced events",
        event(0).to_message().expect("encode").size()
    );
    println!(
        "{:<28} {:>12} {:>12} {:>9}",
        "", "bus", "raw client", "bus/raw"
    );
    let row = |name: &str, bus: f64, raw: f64, unit: &str| {
        println!(
            "{name:<28} {:>9.0} {unit:<2} {:>9.0} {unit:<2} {:>9.2}",
            bus,
            raw,
            bus / raw
        );
    };
    row(
        "publish (events/s)",
        bus.publish_per_sec,
        raw.publish_per_sec,
        "",
    );
    row(
        "end to end (events/s)",
        bus.end_to_end_per_sec,
        raw.end_to_end_per_sec,
        "",
    );
    row(
        "latency p50 (µs)",
        bus.p50.as_micros() as f64,
        raw.p50.as_micros() as f64,
        "",
    );
    row(
        "latency p99 (µs)",
        bus.p99.as_micros() as f64,
        raw.p99.as_micros() as f64,
        "",
    );
}
