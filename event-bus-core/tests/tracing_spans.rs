//! The tracing spans of publish and handle, in a test binary of their own: tracing caches
//! per-callsite interest process-wide, so no other test may run beside it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use event_bus_core::{BusSettings, EventBus, EventEnvelope, InMemoryBroker, Recorder};
use tracing::span;
use tracing_subscriber::layer::{Context, SubscriberExt};

/// A span's name and its fields, as text.
type NamedFields = (String, HashMap<String, String>);

/// Captures the fields of every span, including those recorded after creation.
#[derive(Clone, Default)]
struct SpanFields(Arc<Mutex<HashMap<span::Id, NamedFields>>>);

struct FieldVisitor<'a>(&'a mut HashMap<String, String>);

impl tracing::field::Visit for FieldVisitor<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_owned(),
            format!("{value:?}").trim_matches('"').to_owned(),
        );
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for SpanFields {
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, _: Context<'_, S>) {
        let mut fields = HashMap::new();
        attrs.record(&mut FieldVisitor(&mut fields));
        self.0
            .lock()
            .unwrap()
            .insert(id.clone(), (attrs.metadata().name().to_owned(), fields));
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, _: Context<'_, S>) {
        if let Some((_, fields)) = self.0.lock().unwrap().get_mut(id) {
            values.record(&mut FieldVisitor(fields));
        }
    }
}

#[tokio::test]
async fn publish_and_handle_spans_carry_the_event_and_its_latency() {
    let spans = SpanFields::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(spans.clone()));
    let bus = EventBus::new(Arc::new(InMemoryBroker::new()), BusSettings::default());
    let subscription = bus
        .subscribe(bus.subscription("order.placed", "audit"), Recorder::new())
        .await
        .unwrap();
    let published = EventEnvelope::builder("order.placed", serde_json::json!({}))
        .aggregate("order", "order-7", 1)
        .build();
    bus.publish(&published).await.unwrap();
    subscription
        .stats()
        .wait_until(Duration::from_secs(10), |s| s.handled == 1)
        .await
        .unwrap();
    bus.shutdown().await.unwrap();

    let spans = spans.0.lock().unwrap();
    for name in ["event.publish", "event.handle"] {
        let (_, fields) = spans
            .values()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no {name} span"));
        assert_eq!(fields["event_id"], published.id.to_string(), "{name}");
        assert_eq!(fields["event_type"], "order.placed", "{name}");
        assert_eq!(fields["aggregate_id"], "order-7", "{name}");
        assert_eq!(
            fields["correlation_id"],
            published.correlation_id.to_string(),
            "{name}"
        );
        let latency: f64 = fields["latency_ms"].parse().unwrap();
        assert!(latency >= 0.0, "{name}");
    }
    let (_, handle) = spans.values().find(|(n, _)| n == "event.handle").unwrap();
    assert_eq!(handle["outcome"], "handled");
}
