//! Memory of a process that publishes and consumes on the in-memory bus with its defaults
//! (retention, in-process dedup store): its resident set after 100,000 and after 500,000
//! events, all handled. Bounded memory means the two are close.
//!
//! `cargo bench -p event-bus-core --bench memory_rss` (release build).

mod common;

use event_bus_core::EventEnvelope;

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
    let (bus, handled) = common::counting_bus().await;
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
            common::wait_until_handled(&handled, published).await;
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
