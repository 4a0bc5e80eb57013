//! A service that wants neither the per-event spans nor their cost turns them off with its log
//! filter, as the README says; in a test binary of its own, since tracing caches per-callsite
//! interest process-wide.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use event_bus_core::{BusSettings, EventBus, EventEnvelope, InMemoryBroker, Recorder};
use tracing::span;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, SubscriberExt};

/// Counts the spans the filter lets through, by name.
#[derive(Clone, Default)]
struct EventSpans(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for EventSpans {
    fn on_new_span(&self, attrs: &span::Attributes<'_>, _: &span::Id, _: Context<'_, S>) {
        if attrs.metadata().name().starts_with("event.") {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

async fn spans_under(filter: &str) -> usize {
    let spans = EventSpans::default();
    let subscriber = tracing_subscriber::registry()
        .with(EnvFilter::new(filter))
        .with(spans.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();
    let bus = EventBus::new(Arc::new(InMemoryBroker::new()), BusSettings::default());
    let subscription = bus
        .subscribe(bus.subscription("order.placed", "audit"), Recorder::new())
        .await
        .unwrap();
    bus.publish(&EventEnvelope::builder("order.placed", serde_json::json!({})).build())
        .await
        .unwrap();
    subscription
        .stats()
        .wait_until(Duration::from_secs(10), |s| s.handled == 1)
        .await
        .unwrap();
    bus.shutdown().await.unwrap();
    spans.0.load(Ordering::SeqCst)
}

#[tokio::test(flavor = "current_thread")]
async fn the_per_event_spans_follow_the_log_filter() {
    assert_eq!(
        spans_under("info").await,
        2,
        "event.publish and event.handle"
    );
    assert_eq!(spans_under("info,event_bus_core=warn").await, 0);
}
