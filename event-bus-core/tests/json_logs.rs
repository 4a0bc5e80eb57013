//! `EVENT_BUS_LOG_FORMAT=json`: publish and handle log one JSON object per line with the
//! fields operation, eventType, eventId, aggregateId and latencyMs.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use event_bus_core::telemetry::logging::{LogFormat, subscriber};
use event_bus_core::{BusSettings, EventBus, EventEnvelope, InMemoryBroker, Recorder};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Collects everything written, shared by clones.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> MakeWriter<'w> for Captured {
    type Writer = Captured;

    fn make_writer(&'w self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_and_handle_log_json_lines_with_the_event_fields() {
    let captured = Captured::default();
    let format: LogFormat = "json".parse().unwrap();
    tracing::subscriber::set_global_default(subscriber(
        format,
        EnvFilter::new("event_bus=debug"),
        captured.clone(),
    ))
    .expect("the only subscriber here");

    let bus = EventBus::new(Arc::new(InMemoryBroker::new()), BusSettings::default());
    let recorder = Recorder::new();
    bus.subscribe(
        bus.subscription("user.registered", "welcome"),
        recorder.clone(),
    )
    .await
    .unwrap();
    let event = EventEnvelope::builder("user.registered", serde_json::json!({}))
        .aggregate("user", "user-7", 1)
        .build();
    bus.publish(&event).await.unwrap();
    recorder.wait_for(1, Duration::from_secs(10)).await.unwrap();
    bus.shutdown().await.unwrap();

    let output = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = output
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    for operation in ["publish", "handle"] {
        let line = lines
            .iter()
            .find(|l| l["operation"] == operation)
            .unwrap_or_else(|| panic!("no {operation} line in:\n{output}"));
        assert_eq!(line["eventType"], "user.registered", "{line}");
        assert_eq!(line["eventId"], event.id.to_string(), "{line}");
        assert_eq!(line["aggregateId"], "user-7", "{line}");
        let latency = line["latencyMs"]
            .as_f64()
            .unwrap_or_else(|| panic!("latencyMs: {line}"));
        assert!((0.0..10_000.0).contains(&latency), "{line}");
        assert_eq!(line["level"], "DEBUG", "{line}");
        assert!(line["timestamp"].is_string(), "{line}");
    }
}
