//! Memory of a process that publishes and consumes on the in-memory bus with its defaults
//! (retention, in-process dedup store): its resident set after 100,000 and after 500,000
//! events, all handled. Bounded memory means the two are close.
//!
//! `cargo bench -p event-bus-core --bench memory_rss` (release build).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use event_bus_core::{BusSettings, EventBus, EventEnvelope, InMemoryBroker, handler_fn};

/// Events published at once before waiting for the handler to catch up.
const CHUNK: usize = 1_000;
/// Where the resident set is read.
const MARKS: [usize; 2] = [100_000, 500_000];

/// The process's resident set in KiB, from `/proc/self/status`.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[tokio::main]
async fn main() {
    let bus = EventBus::new(Arc::new(InMemoryBroker::new()), BusSettings::default());
    let handled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&handled);
    let handler = handler_fn(move |_| {
        counter.fetch_add(1, Ordering::Relaxed);
        async { Ok(()) }
    });
    bus.subscribe(bus.subscription("order.placed", "billing"), handler)
        .await
        .expect("subscribe");
    let mut published = 0;
    let mut readings = Vec::new();
    for mark in MARKS {
        while published < mark {
            for _ in 0..CHUNK {
                let payload = serde_json::json!({ "order": published, "total": "12.50" });
                let event = EventEnvelope::builder("order.placed", payload)
                    .aggregate("order", format!("o-{published}"), 1)
                    .build();
                bus.publish(&event).await.expect("publish");
                published += 1;
            }
            while handled.load(Ordering::Relaxed) < published {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        readings.push((mark, rss_kib()));
        println!(
            "after {mark:>7} events handled: RSS {} MiB",
            rss_kib() / 1024
        );
    }
    let (first, last) = (readings[0].1, readings[readings.len() - 1].1);
    println!(
        "RSS after {} / after {}: {:.2}",
        MARKS[1],
        MARKS[0],
        last as f64 / first as f64
    );
    bus.shutdown().await.expect("shutdown");
}
