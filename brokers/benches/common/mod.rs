//! What every broker benchmark shares: the events, the clock, the measured run and the table.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use std::sync::Arc;

use event_bus_core::{EventBus, EventEnvelope, SubscriptionConfig, handler_fn};
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

/// The number of the event whose envelope JSON is `payload`, decoded into an `EventEnvelope`
/// as the bus decodes it.
pub fn decoded_number(payload: &[u8]) -> u64 {
    let envelope: EventEnvelope = serde_json::from_slice(payload).expect("decode");
    envelope.payload["n"].as_u64().expect("n")
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

/// Counts handled events, each once (a redelivered event is not counted again), and wakes
/// the waiter once all of a round's are in.
pub struct Counter {
    expected: u64,
    handled: AtomicU64,
    /// Whether event `n` was handled, for `n` below `expected`.
    seen: Vec<AtomicBool>,
    /// When the first event was handled.
    first: OnceLock<Instant>,
    done: Notify,
}

impl Counter {
    /// A counter that is done after the `expected` events numbered from 0.
    pub fn new(expected: u64) -> Self {
        Self {
            expected,
            handled: AtomicU64::new(0),
            seen: (0..expected).map(|_| AtomicBool::new(false)).collect(),
            first: OnceLock::new(),
            done: Notify::new(),
        }
    }

    /// Event `n` was handled.
    pub fn handled(&self, n: u64) {
        self.first.get_or_init(Instant::now);
        if self.seen[n as usize].swap(true, Ordering::SeqCst) {
            return;
        }
        if self.handled.fetch_add(1, Ordering::SeqCst) + 1 == self.expected {
            self.done.notify_one();
        }
    }

    /// Events per second from `started` until every event was handled.
    pub async fn rate_since(&self, started: Instant) -> f64 {
        self.wait_for_all().await;
        self.expected as f64 / started.elapsed().as_secs_f64()
    }

    /// Events per second from the first event handled until every event was handled.
    pub async fn rate_from_first(&self) -> f64 {
        self.wait_for_all().await;
        let first = *self.first.get().expect("an event handled");
        self.expected as f64 / first.elapsed().as_secs_f64()
    }

    pub async fn wait_for_all(&self) {
        let all = tokio::time::timeout(Duration::from_secs(120), async {
            while self.handled.load(Ordering::SeqCst) < self.expected {
                self.done.notified().await;
            }
        })
        .await;
        if all.is_err() {
            let missing: Vec<usize> = self
                .seen
                .iter()
                .enumerate()
                .filter(|(_, seen)| !seen.load(Ordering::SeqCst))
                .map(|(n, _)| n)
                .take(20)
                .collect();
            panic!(
                "{} of {} events handled in time; the first missing: {missing:?}",
                self.handled.load(Ordering::SeqCst),
                self.expected
            );
        }
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

/// A consumer of `queue` on `channel`, which gets at most `prefetch` unacknowledged
/// deliveries at a time.
#[cfg(feature = "rabbitmq")]
pub async fn amqp_consumer(
    channel: &lapin::Channel,
    queue: &str,
    prefetch: u16,
) -> lapin::Consumer {
    use lapin::options::{BasicConsumeOptions, BasicQosOptions};
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await
        .expect("qos");
    channel
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            lapin::types::FieldTable::default(),
        )
        .await
        .expect("consume")
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

/// Concurrent tasks publishing one event at a time in a throughput bench.
pub const PUBLISHERS: u64 = 64;
/// Events in one `publish_batch` of a throughput bench.
pub const BATCH: u64 = 100;
/// Concurrent tasks publishing batches in a throughput bench.
pub const BATCH_PUBLISHERS: u64 = 4;
/// Consumer-group members in a throughput bench.
pub const MEMBERS: usize = 4;

/// Events per second of `events` published through `bus` one at a time, in turn, by
/// [`PUBLISHERS`] tasks; the bus is shut down after.
pub async fn bus_publish_rate(bus: EventBus, events: u64) -> f64 {
    let bus = Arc::new(bus);
    let rate = publish_rate(events, PUBLISHERS, {
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

/// Events per second of `events` published through `bus` with `publish_batch`, in batches of
/// [`BATCH`] by [`BATCH_PUBLISHERS`] tasks; the bus is shut down after.
pub async fn bus_batch_rate(bus: EventBus, events: u64) -> f64 {
    let bus = Arc::new(bus);
    let rate = batch_rate(events, {
        let bus = Arc::clone(&bus);
        move |events: Vec<EventEnvelope>| {
            let bus = Arc::clone(&bus);
            async move {
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

/// Events per second of `events` handled by [`MEMBERS`] buses that `connect` makes, each
/// subscribed to its `subscription` with a handler that only counts (the bus decodes each
/// delivery before the handler sees it and acknowledges it after), from the first event
/// handled to the last; the members subscribe at once and are shut down after.
pub async fn bus_consume_rate(
    events: u64,
    connect: impl AsyncFn() -> EventBus,
    subscription: impl Fn(&EventBus) -> SubscriptionConfig,
) -> f64 {
    let mut members = Vec::with_capacity(MEMBERS);
    for _ in 0..MEMBERS {
        members.push(connect().await);
    }
    let counter = Arc::new(Counter::new(events));
    let subscribed = members.iter().map(|member| {
        let counter = Arc::clone(&counter);
        let handler = handler_fn(move |event| {
            counter.handled(event.payload["n"].as_u64().expect("n"));
            async { Ok(()) }
        });
        member.subscribe(subscription(member), handler)
    });
    for subscribed in futures::future::join_all(subscribed).await {
        subscribed.expect("subscribe");
    }
    let rate = counter.rate_from_first().await;
    for member in members {
        member.shutdown().await.expect("shutdown");
    }
    rate
}

/// Events per second of `events` published in batches of [`BATCH`] by [`BATCH_PUBLISHERS`]
/// tasks, each batch given as its envelopes, made on the clock: every side starts from the same
/// batch in memory, as a caller of `publish_batch` has it.
pub async fn batch_rate<F, Fut>(events: u64, publish: F) -> f64
where
    F: Fn(Vec<EventEnvelope>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    concurrent_rate(events, BATCH_PUBLISHERS, |publisher| {
        let publish = publish.clone();
        async move {
            let step = (BATCH * BATCH_PUBLISHERS) as usize;
            for first in (publisher * BATCH..events).step_by(step) {
                publish((first..(first + BATCH).min(events)).map(event).collect()).await;
            }
        }
    })
    .await
}

/// Events per second of `events` consumed by omniqueue's `consumers`, each reading up to
/// `read` deliveries at a time, decoding each into an `EventEnvelope` and acknowledging the
/// read's deliveries together, from the first event handled to the last.
pub async fn omniqueue_consume_rate(
    events: u64,
    consumers: Vec<impl omniqueue::QueueConsumer + 'static>,
    read: usize,
) -> f64 {
    let counter = Arc::new(Counter::new(events));
    let members: Vec<_> = consumers
        .into_iter()
        .map(|mut consumer| {
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                loop {
                    let deliveries = consumer
                        .receive_all(read, Duration::from_millis(100))
                        .await
                        .expect("receive");
                    let acks = deliveries.into_iter().map(|delivery| {
                        let payload = delivery.borrow_payload().expect("a payload");
                        counter.handled(decoded_number(payload));
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
    let rate = counter.rate_from_first().await;
    for member in members {
        member.abort();
    }
    rate
}

/// One of the contenders of a throughput bench.
#[derive(Clone, Copy, PartialEq)]
pub enum Side {
    /// The event bus on the backend.
    Bus,
    /// The client library the backend is built on, doing the same work.
    Raw,
    /// `omniqueue`'s backend for the same broker.
    Omniqueue,
}

impl Side {
    /// The side's short name, in ratio headings and in the names of what it makes.
    pub fn name(self) -> &'static str {
        match self {
            Side::Bus => "bus",
            Side::Raw => "raw",
            Side::Omniqueue => "omniqueue",
        }
    }
}

/// The names one side's round uses: `bench-{run}-{round}-{side}` for its publish case (whose
/// events its consume case reads), the same with `-batch` for its batch case.
pub struct Prefixes {
    pub publish: String,
    pub batch: String,
}

impl Prefixes {
    pub fn new(run: &str, round: usize, side: Side) -> Self {
        let publish = format!("bench-{run}-{round}-{}", side.name());
        Self {
            batch: format!("{publish}-batch"),
            publish,
        }
    }
}

/// What a throughput bench does for each side in each round: publish (into what its consume
/// round then reads), publish in batches, consume, and delete what the round made.
pub trait Throughput {
    /// What one side's round uses: names, keys.
    type Round;

    /// The sides compared, the bus first.
    const SIDES: &'static [Side];

    /// The names `side` uses in round `round`.
    fn round(&self, round: usize, side: Side) -> Self::Round;

    /// Events per second of the publish case.
    fn publish(&self, side: Side, round: &Self::Round) -> impl Future<Output = f64>;

    /// Events per second of the batch case; `None` for a side without batches.
    fn publish_batch(&self, side: Side, round: &Self::Round) -> impl Future<Output = Option<f64>>;

    /// Events per second of consuming what the side's publish case wrote.
    fn consume(&self, side: Side, round: &Self::Round) -> impl Future<Output = f64>;

    /// Deletes what `side`'s round made.
    fn delete(&self, side: Side, round: &Self::Round) -> impl Future<Output = ()>;
}

/// The sides in the order they go in `round`: each goes first in turn.
fn order(sides: &'static [Side], round: usize) -> impl Iterator<Item = Side> {
    (0..sides.len()).map(move |i| sides[(round + i) % sides.len()])
}

/// `BENCH_SIDE` (`bus`, `raw`, `omniqueue`) and `BENCH_CASE` (`publish`, `batch`, `consume`):
/// one round of only that side or case, for a profiler (such as `valgrind --tool=callgrind`,
/// whose instruction counts a noisy machine does not move).
struct Only {
    side: Option<String>,
    case: Option<String>,
}

impl Only {
    fn from_env() -> Self {
        Self {
            side: std::env::var("BENCH_SIDE").ok(),
            case: std::env::var("BENCH_CASE").ok(),
        }
    }

    fn is_set(&self) -> bool {
        self.side.is_some() || self.case.is_some()
    }

    fn side(&self, side: Side) -> bool {
        self.side.as_deref().is_none_or(|name| name == side.name())
    }

    fn case(&self, case: &str) -> bool {
        self.case.as_deref().is_none_or(|name| name == case)
    }
}

/// Events per second each side measured in one case, over the rounds.
struct Rates {
    case: &'static str,
    sides: &'static [Side],
    by_side: Vec<Vec<f64>>,
}

impl Rates {
    fn new(case: &'static str, sides: &'static [Side]) -> Self {
        Self {
            case,
            sides,
            by_side: vec![Vec::new(); sides.len()],
        }
    }

    /// Measures every side once, in the order of `round`; a side whose `rate` is `None` has
    /// no such case.
    async fn measure(
        &mut self,
        round: usize,
        only: &Only,
        mut rate: impl AsyncFnMut(Side) -> Option<f64>,
    ) {
        for (index, side) in order(self.sides, round).enumerate() {
            let place = (round + index) % self.sides.len();
            if !only.side(side) {
                continue;
            }
            eprintln!("round {}: {} {}", round + 1, self.case, side.name());
            if let Some(rate) = rate(side).await {
                self.by_side[place].push(rate);
            }
        }
    }

    /// Each side's rate in the last round, in events/s.
    fn last(&self) -> String {
        let rates: Vec<String> = self
            .sides
            .iter()
            .zip(&self.by_side)
            .filter_map(|(side, rates)| Some(format!("{} {:.0}", side.name(), rates.last()?)))
            .collect();
        rates.join(", ")
    }

    /// Median, lowest and highest of the side at `place`, if it was measured.
    fn summary(&self, place: usize) -> Option<(f64, f64, f64)> {
        let mut rates = self.by_side[place].clone();
        rates.sort_by(f64::total_cmp);
        let median = *rates.get(rates.len() / 2)?;
        Some((median, rates[0], rates[rates.len() - 1]))
    }

    /// A markdown row: each side's median with its spread, then the ratio of the bus's median
    /// to each other side's.
    fn row(&self, case: &str) -> String {
        let mut cells = vec![case.to_owned()];
        cells.extend(
            (0..self.sides.len()).map(|place| match self.summary(place) {
                Some((median, low, high)) => format!("{median:.0} ({low:.0}–{high:.0})"),
                None => "—".to_owned(),
            }),
        );
        let bus = self.summary(0);
        cells.extend(
            (1..self.sides.len()).map(|place| match (bus, self.summary(place)) {
                (Some((bus, _, _)), Some((other, _, _))) => format!("{:.2}", bus / other),
                _ => "—".to_owned(),
            }),
        );
        format!("| {} |", cells.join(" | "))
    }
}

/// The rates of a throughput bench's three cases.
pub struct CaseRates {
    publish: Rates,
    batch: Rates,
    consume: Rates,
    /// The load average when the bench started.
    load: String,
}

/// Pause before each side's consume case, so that every side starts consuming from a broker
/// at rest (a RabbitMQ quorum queue, for one, goes on writing for a while after publishing).
const SETTLE: Duration = Duration::from_secs(3);

/// Runs `rounds` interleaved rounds of `bench`: in each, every case is measured for every
/// side, the side that goes first changing every round, then the round's names are deleted.
/// Each round's rates are printed to stderr as it ends.
pub async fn measure<T: Throughput>(bench: &T, rounds: usize) -> CaseRates {
    let only = Only::from_env();
    let rounds = if only.is_set() { 1 } else { rounds };
    let mut measured = CaseRates {
        publish: Rates::new("publish", T::SIDES),
        batch: Rates::new("batch", T::SIDES),
        consume: Rates::new("consume", T::SIDES),
        load: load_average(),
    };
    for round in 0..rounds {
        let names: Vec<T::Round> = T::SIDES
            .iter()
            .map(|&side| bench.round(round, side))
            .collect();
        let names = |side: Side| {
            let place = T::SIDES.iter().position(|s| *s == side).expect("a side");
            &names[place]
        };
        // The consume case reads what the publish case wrote.
        if only.case("publish") || only.case("consume") {
            measured
                .publish
                .measure(round, &only, async |side| {
                    Some(bench.publish(side, names(side)).await)
                })
                .await;
        }
        if only.case("batch") {
            measured
                .batch
                .measure(round, &only, async |side| {
                    bench.publish_batch(side, names(side)).await
                })
                .await;
        }
        if only.case("consume") {
            measured
                .consume
                .measure(round, &only, async |side| {
                    tokio::time::sleep(SETTLE).await;
                    Some(bench.consume(side, names(side)).await)
                })
                .await;
        }
        for &side in T::SIDES {
            bench.delete(side, names(side)).await;
        }
        eprintln!(
            "round {} of {rounds}: publish {}; batch {}; consume {}",
            round + 1,
            measured.publish.last(),
            measured.batch.last(),
            measured.consume.last()
        );
    }
    measured
}

impl CaseRates {
    /// Prints `backend` with the rounds, events and load, then a markdown table of the cases:
    /// each side's median events/s with the spread, and the ratios of the bus's median to the
    /// others'. `raw` heads the raw client's column; `consume` describes the consume case.
    pub fn print(&self, backend: &str, events: u64, raw: &str, consume: &str) {
        let sides = self.publish.sides;
        let rounds = self.publish.by_side[0].len();
        println!(
            "{backend}, {rounds} interleaved rounds of {events} events of {} bytes; load average at start: {}",
            event(0).to_message().expect("encode").size(),
            self.load
        );
        println!();
        let mut headings = vec!["events/s, median (lowest–highest)".to_owned()];
        headings.extend(sides.iter().map(|side| match side {
            Side::Raw => raw.to_owned(),
            other => other.name().to_owned(),
        }));
        headings.extend(sides[1..].iter().map(|side| format!("bus/{}", side.name())));
        println!("| {} |", headings.join(" | "));
        println!("|{}", "---|".repeat(headings.len()));
        println!(
            "{}",
            self.publish
                .row(&format!("publish, {PUBLISHERS} concurrent publishers"))
        );
        println!(
            "{}",
            self.batch.row(&format!(
                "publish_batch of {BATCH}, {BATCH_PUBLISHERS} concurrent publishers"
            ))
        );
        println!(
            "{}",
            self.consume
                .row(&format!("consume, {MEMBERS} members {consume}"))
        );
    }
}

/// The machine's load average (1, 5 and 15 minutes), as `/proc/loadavg` gives it.
fn load_average() -> String {
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    loadavg
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}
