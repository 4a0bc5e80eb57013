//! The cost of crypto-shredding per event: publishing on the in-memory bus through the sealing
//! layer and handling through the opening layer, against the same events without personal
//! fields on the same bus. Interleaved rounds; median, spread and ratio per side.
//!
//! `cargo bench -p personal-data --bench sealing`; `BENCH_EVENTS` sets the events per round.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use event_bus_core::{
    BusSettings, EventBus, EventEnvelope, HandlerError, InMemoryBroker, handler_fn,
};
use personal_data::{DeclarePersonalData, MemoryKeyStore, OpenLayer, Sealer, SealingBroker};
use tokio::sync::Notify;
use tower_layer::Layer;

const ROUNDS: usize = 7;
const USERS: u64 = 100;

fn event(n: u64, personal: bool) -> EventEnvelope {
    let user = format!("u-{}", n % USERS);
    let builder = EventEnvelope::builder(
        "profile.updated",
        serde_json::json!({
            "user_id": user,
            "email": format!("user{n}@example.com"),
            "name": "Zoë Example",
            "revision": n,
        }),
    )
    .source("bench")
    .aggregate("user", user.clone(), n);
    if personal {
        builder.personal_data(user, &["email", "name"]).build()
    } else {
        builder.build()
    }
}

/// One bus: sealing on publish and opening on handle, both doing nothing for undeclared events.
struct Side {
    bus: EventBus,
    handled: Arc<AtomicU64>,
    notify: Arc<Notify>,
}

async fn side() -> Side {
    let sealer = Sealer::new(Arc::new(MemoryKeyStore::new()));
    let broker = SealingBroker::new(Arc::new(InMemoryBroker::new()), sealer.clone());
    let bus = EventBus::new(Arc::new(broker), BusSettings::default()).with_dedup_store(None);
    let handled = Arc::new(AtomicU64::new(0));
    let notify = Arc::new(Notify::new());
    let handler = {
        let handled = handled.clone();
        let notify = notify.clone();
        handler_fn(move |event: EventEnvelope| {
            let handled = handled.clone();
            let notify = notify.clone();
            async move {
                assert!(
                    event.payload["email"]
                        .as_str()
                        .is_some_and(|e| e.ends_with("@example.com"))
                );
                handled.fetch_add(1, Ordering::SeqCst);
                notify.notify_one();
                Ok::<(), HandlerError>(())
            }
        })
    };
    bus.subscribe(
        bus.subscription("profile.updated", "bench"),
        OpenLayer::new(sealer).layer(handler),
    )
    .await
    .expect("subscribe");
    Side {
        bus,
        handled,
        notify,
    }
}

/// Publishes `events` and waits until all are handled; returns (publish, end to end) per event.
async fn round(side: &Side, events: &[EventEnvelope]) -> (Duration, Duration) {
    let start = side.handled.load(Ordering::SeqCst);
    let target = start + events.len() as u64;
    let started = Instant::now();
    for event in events {
        side.bus.publish(event).await.expect("publish");
    }
    let published = started.elapsed();
    while side.handled.load(Ordering::SeqCst) < target {
        tokio::time::timeout(Duration::from_secs(60), side.notify.notified())
            .await
            .expect("handled in time");
    }
    let n = events.len() as u32;
    (published / n, started.elapsed() / n)
}

fn median_and_spread(mut samples: Vec<Duration>) -> (Duration, Duration, Duration) {
    samples.sort();
    (
        samples[samples.len() / 2],
        samples[0],
        samples[samples.len() - 1],
    )
}

#[tokio::main]
async fn main() {
    let count: u64 = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let personal: Vec<_> = (0..count).map(|n| event(n, true)).collect();
    let plain: Vec<_> = (0..count).map(|n| event(n, false)).collect();
    let (sealed_side, plain_side) = (side().await, side().await);
    // Warm-up: makes every user's key, and the buses' topics.
    round(&sealed_side, &personal).await;
    round(&plain_side, &plain).await;
    let (mut sealed_publish, mut sealed_total, mut plain_publish, mut plain_total) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let (publish, total) = round(&sealed_side, &personal).await;
        sealed_publish.push(publish);
        sealed_total.push(total);
        let (publish, total) = round(&plain_side, &plain).await;
        plain_publish.push(publish);
        plain_total.push(total);
    }
    println!(
        "in-memory bus, {count} events of {} bytes per round ({} sealed), {ROUNDS} interleaved rounds, {USERS} subjects",
        plain[0].to_message().expect("encode").size(),
        personal[0].to_message().expect("encode").size(),
    );
    println!(
        "{:<34} {:>22} {:>22} {:>7}",
        "per event, median [min-max]", "2 personal fields", "no personal fields", "ratio"
    );
    for (name, sealed, plain) in [
        ("publish (seal)", sealed_publish, plain_publish),
        ("publish + handle (seal + open)", sealed_total, plain_total),
    ] {
        let (sm, slo, shi) = median_and_spread(sealed);
        let (pm, plo, phi) = median_and_spread(plain);
        println!(
            "{name:<34} {:>6.1} µs [{:>5.1}-{:>5.1}] {:>6.1} µs [{:>5.1}-{:>5.1}] {:>7.2}",
            micros(sm),
            micros(slo),
            micros(shi),
            micros(pm),
            micros(plo),
            micros(phi),
            sm.as_secs_f64() / pm.as_secs_f64()
        );
    }
    sealed_side.bus.shutdown().await.expect("shutdown");
    plain_side.bus.shutdown().await.expect("shutdown");
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
