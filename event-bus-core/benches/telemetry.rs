//! What telemetry costs: the in-memory bus publishing and handling events with telemetry off
//! (no log subscriber, no metrics recorder), on as a production service runs it (text logs at
//! `info` to a sink, the Prometheus recorder), and with the per-event lines on as well
//! (`info,event_bus=debug`), in interleaved rounds; median and spread of each, and the ratios.
//!
//! `cargo bench -p event-bus-core --features logging,prometheus --bench telemetry`

mod common;

use std::sync::Arc;
use std::time::Instant;

use event_bus_core::EventEnvelope;
use event_bus_core::telemetry::logging::{LogFormat, subscriber};
use metrics_exporter_prometheus::PrometheusBuilder;
use tracing_subscriber::EnvFilter;

/// Events per round.
const EVENTS: usize = 20_000;
/// Tasks publishing at once.
const PUBLISHERS: usize = 8;
/// Rounds of each setting.
const ROUNDS: usize = 5;

/// Events per second of one round: `PUBLISHERS` tasks publish `EVENTS` in all, one
/// subscription handles each.
async fn round() -> f64 {
    let (bus, handled) = common::counting_bus().await;
    let bus = Arc::new(bus);
    let started = Instant::now();
    let mut publishers = tokio::task::JoinSet::new();
    for publisher in 0..PUBLISHERS {
        let bus = Arc::clone(&bus);
        publishers.spawn(async move {
            for n in 0..EVENTS / PUBLISHERS {
                let payload = serde_json::json!({ "order": n, "publisher": publisher });
                let event = EventEnvelope::builder("order.placed", payload)
                    .aggregate("order", format!("o-{publisher}-{n}"), 1)
                    .build();
                bus.publish(&event).await.expect("publish");
            }
        });
    }
    publishers.join_all().await;
    common::wait_until_handled(&handled, EVENTS).await;
    let rate = EVENTS as f64 / started.elapsed().as_secs_f64();
    bus.shutdown().await.expect("shutdown");
    rate
}

/// One round on a runtime of its own, with telemetry for this thread only: none, or logs
/// filtered by `filter` and the Prometheus recorder.
fn measure(filter: Option<&str>) -> f64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let Some(filter) = filter else {
        return runtime.block_on(round());
    };
    let logs = subscriber(
        LogFormat::Text,
        EnvFilter::new(filter),
        std::io::sink as fn() -> std::io::Sink,
    );
    let recorder = PrometheusBuilder::new().build_recorder();
    let _logs = tracing::subscriber::set_default(logs);
    let _metrics = metrics::set_default_local_recorder(&recorder);
    runtime.block_on(round())
}

fn median_and_spread(mut rates: Vec<f64>) -> (f64, f64, f64) {
    rates.sort_by(f64::total_cmp);
    (rates[rates.len() / 2], rates[0], rates[rates.len() - 1])
}

/// The settings compared: a name, and the log filter (`None`: telemetry off).
const SETTINGS: [(&str, Option<&str>); 3] = [
    ("off", None),
    ("logs at `info` + Prometheus recorder", Some("info")),
    (
        "per-event lines too (`info,event_bus=debug`)",
        Some("info,event_bus=debug"),
    ),
];

fn main() {
    measure(None);
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); SETTINGS.len()];
    for _ in 0..ROUNDS {
        for ((_, filter), rates) in SETTINGS.iter().zip(&mut rates) {
            rates.push(measure(*filter));
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("{EVENTS} events, {PUBLISHERS} publishers, {ROUNDS} interleaved rounds; load {load}");
    println!("| telemetry | events/s (median) | spread | / off |");
    println!("|---|---|---|---|");
    let off = median_and_spread(rates[0].clone()).0;
    for ((name, _), rates) in SETTINGS.iter().zip(rates) {
        let (median, low, high) = median_and_spread(rates);
        println!(
            "| {name} | {median:.0} | {low:.0}–{high:.0} | {:.2} |",
            median / off
        );
    }
}
