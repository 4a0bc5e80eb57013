//! What every broker benchmark shares: the events, the clock, the measured run and the table.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use event_bus_core::EventEnvelope;
use tokio::sync::Notify;

pub const EVENTS: u64 = 10_000;
pub const PACED_EVENTS: u64 = 1_000;
const PACE: Duration = Duration::from_millis(1);

/// When each event was published, and how long after that it was handled.
#[derive(Default)]
pub struct Clock {
    published: Mutex<HashMap<u64, Instant>>,
    latencies: Mutex<Vec<Duration>>,
    handled: Notify,
}

impl Clock {
    pub fn published(&self, n: u64) {
        self.published.lock().unwrap().insert(n, Instant::now());
    }

    pub fn handled(&self, n: u64) {
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
pub struct Measured {
    pub publish_per_sec: f64,
    pub end_to_end_per_sec: f64,
    pub p50: Duration,
    pub p99: Duration,
}

pub fn event(n: u64) -> EventEnvelope {
    EventEnvelope::builder(
        "bench.event",
        serde_json::json!({"n": n, "name": "Zoë", "padding": "x".repeat(200)}),
    )
    .source("bench")
    .aggregate("thing", format!("agg-{}", n % 64), n)
    .build()
}

pub fn event_number(payload: &[u8]) -> u64 {
    let envelope: serde_json::Value = serde_json::from_slice(payload).expect("a JSON envelope");
    envelope["data"]["n"].as_u64().expect("n")
}

pub async fn run(clock: &Clock, mut publish: impl AsyncFnMut(u64)) -> Measured {
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

/// Prints the bus and the raw client side by side, with their ratio.
pub fn print_table(backend: &str, bus: &Measured, raw: &Measured) {
    println!(
        "{backend}, {EVENTS} events of {} bytes; latency over {PACED_EVENTS} paced events",
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

/// Counts handled events and wakes the waiter once all of a round's are in.
pub struct Counter {
    expected: u64,
    handled: AtomicU64,
    done: Notify,
}

impl Counter {
    /// A counter that is done after `expected` events.
    pub fn new(expected: u64) -> Self {
        Self {
            expected,
            handled: AtomicU64::new(0),
            done: Notify::new(),
        }
    }

    pub fn handled(&self) {
        if self.handled.fetch_add(1, Ordering::SeqCst) + 1 == self.expected {
            self.done.notify_one();
        }
    }

    pub async fn wait_for_all(&self) {
        tokio::time::timeout(Duration::from_secs(120), async {
            while self.handled.load(Ordering::SeqCst) < self.expected {
                self.done.notified().await;
            }
        })
        .await
        .expect("every event handled in time");
    }
}

/// The raw `XADD` of `message` with the fields the Redis backend writes: `payload`, `key`,
/// `h:{name}`.
#[cfg(feature = "redis")]
pub fn xadd(stream: &str, message: &event_bus_core::Message) -> redis::Cmd {
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
    cmd
}

/// Events per second when `tasks` concurrent tasks, each started with its index, together
/// handle `events` events.
pub async fn concurrent_rate<F, Fut>(events: u64, tasks: u64, task: F) -> f64
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let started = Instant::now();
    let running: Vec<_> = (0..tasks).map(|index| tokio::spawn(task(index))).collect();
    for task in running {
        task.await.expect("task");
    }
    events as f64 / started.elapsed().as_secs_f64()
}

/// Events per second of `events` published one at a time, in turn, by `publishers` tasks.
pub async fn publish_rate<F, Fut>(events: u64, publishers: u64, publish: F) -> f64
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    concurrent_rate(events, publishers, |first| {
        let publish = publish.clone();
        async move {
            for n in (first..events).step_by(publishers as usize) {
                publish(n).await;
            }
        }
    })
    .await
}
