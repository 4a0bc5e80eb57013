//! Event store benchmarks, in-memory and PostgreSQL (127.0.0.1:5432, a schema of its own that
//! is dropped afterwards): append throughput (one event per append, and batches of 1,000),
//! rebuilding a 100,000-event aggregate with and without a snapshot, and the replay rate.
//!
//! `cargo bench -p event-store-postgres --bench store`; `BENCH_EVENTS` sets the aggregate size.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use event_bus_core::{EventEnvelope, HandlerError, handler_fn};
use event_store::MemoryEventStore;
use event_store::replay::Replayer;
use event_store::store::{EventFilter, EventStore, EventStoreExt, ExpectedVersion, StreamId};
use event_store_postgres::PgEventStore;

const SINGLE_APPENDS: u64 = 2_000;
const BATCH: u64 = 1_000;

fn event(n: u64) -> EventEnvelope {
    EventEnvelope::builder(
        "turn.completed",
        serde_json::json!({ "n": n, "text": "a short turn of a conversation" }),
    )
    .source("bench")
    .build()
}

fn sum(total: u64, event: &EventEnvelope) -> u64 {
    total + event.payload["n"].as_u64().unwrap_or(0)
}

struct Row {
    store: &'static str,
    single_appends_per_s: f64,
    batched_events_per_s: f64,
    reconstruct_full: Duration,
    reconstruct_snapshot: Duration,
    replay_events_per_s: f64,
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

async fn measure(name: &'static str, store: Arc<dyn EventStore>, events: u64) -> Row {
    let started = Instant::now();
    for n in 0..SINGLE_APPENDS {
        let stream = StreamId::new("bench-single", format!("s-{}", n % 100));
        store
            .append(&stream, ExpectedVersion::Any, vec![event(n)])
            .await
            .unwrap();
    }
    let single_appends_per_s = per_second(SINGLE_APPENDS, started.elapsed());

    let big = StreamId::new("bench", "big");
    let started = Instant::now();
    let mut version = 0;
    while version < events {
        let batch: Vec<_> = (version..(version + BATCH).min(events))
            .map(event)
            .collect();
        version = store
            .append(&big, ExpectedVersion::Exact(version), batch)
            .await
            .unwrap()
            .version;
    }
    let batched_events_per_s = per_second(events, started.elapsed());

    // The store snapshots nothing by itself; `reconstruct_state` saves one past the interval.
    let started = Instant::now();
    let full = store.reconstruct_state(&big, sum, 0u64).await.unwrap();
    let reconstruct_full = started.elapsed();
    assert_eq!((full.version, full.snapshot_version), (events, None));
    assert!(full.snapshot_saved);
    let tail: Vec<_> = (events..events + 50).map(event).collect();
    store
        .append(&big, ExpectedVersion::Exact(events), tail)
        .await
        .unwrap();
    let started = Instant::now();
    let from_snapshot = store.reconstruct_state(&big, sum, 0u64).await.unwrap();
    let reconstruct_snapshot = started.elapsed();
    assert_eq!(from_snapshot.snapshot_version, Some(events));
    assert_eq!(from_snapshot.events_applied, 50);

    let seen = Arc::new(AtomicU64::new(0));
    let counter = {
        let seen = seen.clone();
        handler_fn(move |_event: EventEnvelope| {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::Relaxed);
                Ok::<(), HandlerError>(())
            }
        })
    };
    let filter = EventFilter::all().aggregate_type("bench");
    let started = Instant::now();
    let done = Replayer::new(store.clone())
        .batch_size(1_000)
        .replay_into(&filter, 0, &counter, |_| {})
        .await
        .unwrap();
    let replay_events_per_s = per_second(done.replayed, started.elapsed());
    assert_eq!(seen.load(Ordering::Relaxed), events + 50);

    Row {
        store: name,
        single_appends_per_s,
        batched_events_per_s,
        reconstruct_full,
        reconstruct_snapshot,
        replay_events_per_s,
    }
}

#[tokio::main]
async fn main() {
    let events: u64 = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let memory: Arc<dyn EventStore> = Arc::new(MemoryEventStore::new(1_000));
    let mut rows = vec![measure("memory", memory, events).await];

    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let schema = format!("evbus_bench_{}", uuid::Uuid::now_v7().simple());
    let postgres = PgEventStore::connect(&url, &schema)
        .await
        .expect("PostgreSQL on 127.0.0.1:5432")
        .with_snapshot_interval(1_000);
    let pool = postgres.pool().clone();
    rows.push(measure("postgres", Arc::new(postgres), events).await);
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(&pool)
        .await
        .expect("drop the bench schema");

    println!(
        "\n{events} events in the aggregate; {SINGLE_APPENDS} single-event appends over 100 streams\n"
    );
    println!(
        "| store | appends/s (1 event each) | events/s (batches of {BATCH}) | rebuild {events}, no snapshot | rebuild from snapshot (+50 events) | replay events/s |"
    );
    println!("|---|---|---|---|---|---|");
    for row in rows {
        println!(
            "| {} | {:.0} | {:.0} | {:.0} ms | {:.2} ms | {:.0} |",
            row.store,
            row.single_appends_per_s,
            row.batched_events_per_s,
            row.reconstruct_full.as_secs_f64() * 1000.0,
            row.reconstruct_snapshot.as_secs_f64() * 1000.0,
            row.replay_events_per_s
        );
    }
}
