//! The bus's metrics, read through a debugging recorder installed as the process's recorder:
//! a published, handled and dead-lettered flow moves the right series.

use std::sync::Arc;
use std::time::Duration;

use event_bus_core::dead_letter::DeadLetterHandler;
use event_bus_core::dead_letter::MemoryParkedStore;
use event_bus_core::telemetry::metrics::names;
use event_bus_core::{
    BusError, BusSettings, EventBus, EventEnvelope, HandlerError, InMemoryBroker,
    SubscriptionConfig, handler_fn,
};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::{CompositeKey, MetricKind};

const TIMEOUT: Duration = Duration::from_secs(10);

type Series = Vec<(CompositeKey, DebugValue)>;

fn find<'a>(
    series: &'a Series,
    kind: MetricKind,
    name: &str,
    labels: &[(&str, &str)],
) -> Option<&'a DebugValue> {
    series
        .iter()
        .find(|(key, _)| {
            key.kind() == kind
                && key.key().name() == name
                && labels.iter().all(|(k, v)| {
                    key.key()
                        .labels()
                        .any(|label| label.key() == *k && label.value() == *v)
                })
        })
        .map(|(_, value)| value)
}

fn counter(series: &Series, name: &str, labels: &[(&str, &str)]) -> u64 {
    match find(series, MetricKind::Counter, name, labels) {
        Some(DebugValue::Counter(n)) => *n,
        _ => 0,
    }
}

fn histogram_len(series: &Series, name: &str, labels: &[(&str, &str)]) -> usize {
    match find(series, MetricKind::Histogram, name, labels) {
        Some(DebugValue::Histogram(values)) => values.len(),
        _ => 0,
    }
}

fn gauge(series: &Series, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    match find(series, MetricKind::Gauge, name, labels) {
        Some(DebugValue::Gauge(value)) => Some(value.into_inner()),
        _ => None,
    }
}

/// Every series so far. The debugging recorder drains counters and gauges on each snapshot, so
/// the snapshots are added up here.
fn snapshot(snapshotter: &Snapshotter, totals: &mut Series) {
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        match totals.iter_mut().find(|(k, _)| *k == key) {
            None => totals.push((key, value)),
            Some((_, total)) => match (total, value) {
                (DebugValue::Counter(t), DebugValue::Counter(v)) => *t += v,
                (DebugValue::Gauge(t), DebugValue::Gauge(v)) => {
                    *t = (t.into_inner() + v.into_inner()).into();
                }
                (DebugValue::Histogram(t), DebugValue::Histogram(v)) => t.extend(v),
                (total, value) => *total = value,
            },
        }
    }
}

fn event(event_type: &str, n: u32) -> EventEnvelope {
    EventEnvelope::builder(event_type, serde_json::json!({ "n": n }))
        .aggregate("order", format!("order-{n}"), 1)
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_handled_and_dead_lettered_flow_moves_the_right_series() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this test binary");

    let broker = InMemoryBroker::new();
    let bus = EventBus::new(Arc::new(broker.clone()), BusSettings::default());
    let handler = handler_fn(|event: EventEnvelope| async move {
        if event.payload["n"] == 2 {
            Err(HandlerError::permanent("refused"))
        } else {
            Ok(())
        }
    });
    let subscription = bus
        .subscribe(bus.subscription("order.placed", "billing"), handler)
        .await
        .unwrap();
    for n in 0..3 {
        bus.publish(&event("order.placed", n)).await.unwrap();
    }
    bus.publish(&event("order.cancelled", 9)).await.unwrap();
    // A batch of two types with one event too large: each outcome at its own index, the
    // series counted per type.
    let too_large = EventEnvelope::builder(
        "order.shipped",
        serde_json::json!({ "blob": "x".repeat(2 * 1024 * 1024) }),
    )
    .build();
    let batch = [
        event("order.shipped", 1),
        event("order.refunded", 2),
        too_large,
        event("order.shipped", 3),
    ];
    let outcomes = bus.publish_batch(&batch).await;
    assert_eq!(outcomes.len(), 4);
    assert!(outcomes[0].is_ok() && outcomes[1].is_ok() && outcomes[3].is_ok());
    assert!(
        matches!(outcomes[2], Err(BusError::MessageTooLarge { .. })),
        "{:?}",
        outcomes[2]
    );
    subscription
        .stats()
        .wait_until(TIMEOUT, |s| s.handled == 2 && s.dead_lettered == 1)
        .await
        .unwrap();

    let mut totals = Series::new();
    snapshot(&snapshotter, &mut totals);
    let series = &totals;
    let placed = [("backend", "memory"), ("event_type", "order.placed")];
    let cancelled = [("backend", "memory"), ("event_type", "order.cancelled")];
    assert_eq!(counter(series, names::PUBLISHED, &placed), 3);
    assert_eq!(counter(series, names::PUBLISHED, &cancelled), 1);
    let shipped = [("backend", "memory"), ("event_type", "order.shipped")];
    let refunded = [("backend", "memory"), ("event_type", "order.refunded")];
    assert_eq!(counter(series, names::PUBLISHED, &shipped), 2);
    assert_eq!(counter(series, names::PUBLISHED, &refunded), 1);
    assert_eq!(histogram_len(series, names::PUBLISH_DURATION, &shipped), 2);
    assert_eq!(counter(series, names::PUBLISH_FAILED, &shipped), 0);
    assert_eq!(histogram_len(series, names::PUBLISH_DURATION, &placed), 3);
    assert_eq!(counter(series, names::HANDLED, &placed), 2);
    assert_eq!(counter(series, names::FAILED, &placed), 1);
    assert_eq!(counter(series, names::RETRIED, &placed), 0);
    assert_eq!(histogram_len(series, names::HANDLE_DURATION, &placed), 3);
    assert_eq!(
        counter(
            series,
            names::DEAD_LETTERED,
            &[
                ("event_type", "order.placed"),
                ("reason", "permanent-failure")
            ]
        ),
        1
    );
    let dlq = bus.topics().dead_letter_topic().to_owned();
    let dlq_labels = [("backend", "memory"), ("topic", dlq.as_str())];
    assert_eq!(
        gauge(series, names::DEAD_LETTER_QUEUE_SIZE, &dlq_labels),
        Some(1.0)
    );

    // Taking the dead letter off the topic (parked here) brings the queue size back to 0.
    let handler = DeadLetterHandler::new(bus.broker().clone(), Arc::new(MemoryParkedStore::new()));
    let drained = handler
        .drain(
            &SubscriptionConfig::new(&dlq, "dlq-handler"),
            Duration::from_millis(200),
        )
        .await
        .unwrap();
    assert_eq!(drained, 1);
    snapshot(&snapshotter, &mut totals);
    let series = &totals;
    assert_eq!(
        gauge(series, names::DEAD_LETTER_QUEUE_SIZE, &dlq_labels),
        Some(0.0)
    );
    bus.shutdown().await.unwrap();
}
