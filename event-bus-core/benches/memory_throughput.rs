//! Throughput of the in-memory bus against the raw thing it stands for: a tokio channel whose
//! consumers do the same work per event (encode the envelope on the publishing side, decode it
//! on the consuming side). Several publishing tasks, several consumers (for the bus: members
//! of one group, each acknowledging its deliveries), interleaved rounds; median and spread of
//! each side and the ratio bus/raw.
//!
//! `cargo bench -p event-bus-core --bench memory_throughput`; with `BENCH_SIDE` set to `bus`,
//! `bus-without-dedup` or `channel`, one round of that side alone, for a profiler (such as
//! `valgrind --tool=callgrind`, whose instruction counts a noisy machine does not move).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use event_bus_core::{BusSettings, EventBus, EventEnvelope, InMemoryBroker, Message, handler_fn};
use tokio::sync::{Mutex, mpsc};

/// Events per round.
const EVENTS: usize = 20_000;
/// Tasks publishing at once.
const PUBLISHERS: usize = 8;
/// Consumers: members of the bus's group, or tasks taking from the raw channel.
const CONSUMERS: usize = 4;
/// Rounds of each side.
const ROUNDS: usize = 7;

fn event(publisher: usize, n: usize) -> EventEnvelope {
    let payload = serde_json::json!({ "order": n, "publisher": publisher, "total": "12.50" });
    EventEnvelope::builder("order.placed", payload)
        .aggregate("order", format!("o-{publisher}-{n}"), 1)
        .build()
}

async fn wait_until(handled: &AtomicUsize, count: usize) {
    while handled.load(Ordering::Relaxed) < count {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// Events per second through the bus: `PUBLISHERS` tasks publish, `CONSUMERS` members of one
/// group handle (the bus decodes each delivery and acknowledges it). With `dedup`, each member
/// claims and completes each event's idempotency key in its in-process store, as by default.
async fn through_the_bus(dedup: bool) -> f64 {
    let broker = InMemoryBroker::new();
    let bus = Arc::new(EventBus::new(
        Arc::new(broker.clone()),
        BusSettings::default(),
    ));
    let handled = Arc::new(AtomicUsize::new(0));
    let mut members = Vec::new();
    for _ in 0..CONSUMERS {
        let mut member = EventBus::new(Arc::new(broker.connect()), BusSettings::default());
        if !dedup {
            member = member.with_dedup_store(None);
        }
        let counter = Arc::clone(&handled);
        let handler = handler_fn(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
            async { Ok(()) }
        });
        member
            .subscribe(member.subscription("order.placed", "billing"), handler)
            .await
            .expect("subscribe");
        members.push(member);
    }
    let started = Instant::now();
    let mut publishers = tokio::task::JoinSet::new();
    for publisher in 0..PUBLISHERS {
        let bus = Arc::clone(&bus);
        publishers.spawn(async move {
            for n in 0..EVENTS / PUBLISHERS {
                bus.publish(&event(publisher, n)).await.expect("publish");
            }
        });
    }
    publishers.join_all().await;
    wait_until(&handled, EVENTS).await;
    let rate = EVENTS as f64 / started.elapsed().as_secs_f64();
    for member in members {
        member.shutdown().await.expect("shutdown");
    }
    rate
}

/// Events per second through a tokio channel: the same publishers encode each envelope to a
/// message, `CONSUMERS` tasks take messages and decode them.
async fn through_a_channel() -> f64 {
    let (sender, receiver) = mpsc::channel::<Message>(1024);
    let receiver = Arc::new(Mutex::new(receiver));
    let handled = Arc::new(AtomicUsize::new(0));
    let mut consumers = tokio::task::JoinSet::new();
    for _ in 0..CONSUMERS {
        let (receiver, handled) = (Arc::clone(&receiver), Arc::clone(&handled));
        consumers.spawn(async move {
            loop {
                let Some(message) = receiver.lock().await.recv().await else {
                    return;
                };
                EventEnvelope::from_message(&message).expect("decode");
                handled.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let started = Instant::now();
    let mut publishers = tokio::task::JoinSet::new();
    for publisher in 0..PUBLISHERS {
        let sender = sender.clone();
        publishers.spawn(async move {
            for n in 0..EVENTS / PUBLISHERS {
                let message = event(publisher, n).to_message().expect("encode");
                sender.send(message).await.expect("send");
            }
        });
    }
    drop(sender);
    publishers.join_all().await;
    wait_until(&handled, EVENTS).await;
    let rate = EVENTS as f64 / started.elapsed().as_secs_f64();
    consumers.join_all().await;
    rate
}

fn median_and_spread(mut rates: Vec<f64>) -> (f64, f64, f64) {
    rates.sort_by(f64::total_cmp);
    (rates[rates.len() / 2], rates[0], rates[rates.len() - 1])
}

/// What one round measures.
#[derive(Clone, Copy)]
enum Side {
    Bus,
    BusWithoutDedup,
    Channel,
}

const SIDES: [Side; 3] = [Side::Bus, Side::BusWithoutDedup, Side::Channel];

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Bus => "bus",
            Side::BusWithoutDedup => "bus-without-dedup",
            Side::Channel => "channel",
        }
    }

    async fn rate(self) -> f64 {
        match self {
            Side::Bus => through_the_bus(true).await,
            Side::BusWithoutDedup => through_the_bus(false).await,
            Side::Channel => through_a_channel().await,
        }
    }
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    if let Ok(name) = std::env::var("BENCH_SIDE") {
        let side = SIDES
            .into_iter()
            .find(|side| side.name() == name)
            .expect("BENCH_SIDE is bus, bus-without-dedup or channel");
        println!("{name}: {:.0} events/s", runtime.block_on(side.rate()));
        return;
    }
    runtime.block_on(through_the_bus(true));
    let mut rates: [Vec<f64>; 3] = Default::default();
    for round in 0..ROUNDS {
        // Each side goes first in turn.
        for i in 0..SIDES.len() {
            let side = (round + i) % SIDES.len();
            rates[side].push(runtime.block_on(SIDES[side].rate()));
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "{EVENTS} events, {PUBLISHERS} publishers, {CONSUMERS} consumers, {ROUNDS} interleaved rounds; load {load}"
    );
    let [bus, plain, raw] = rates.map(median_and_spread);
    println!("| | events/s (median) | spread | ratio to the channel |");
    println!("|---|---|---|---|");
    for (name, (median, low, high)) in [
        ("bus (idempotency on, the default)", bus),
        ("bus, idempotency off", plain),
        ("tokio channel + encode/decode", raw),
    ] {
        println!(
            "| {name} | {median:.0} | {low:.0}–{high:.0} | {:.2} |",
            median / raw.0
        );
    }
}
