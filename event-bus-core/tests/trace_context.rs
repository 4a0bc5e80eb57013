//! W3C trace context across the bus: a consumer's `event.handle` span continues the trace of
//! the producer's `event.publish` span, through the `traceparent` header.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use event_bus_core::telemetry::trace_context::{self, headers};
use event_bus_core::{BusSettings, EventBus, EventEnvelope, InMemoryBroker, handler_fn};
use opentelemetry::Context;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

const KNOWN_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handler_continues_the_publishers_trace() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("event-bus-test")));
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber here");

    let broker = InMemoryBroker::new();
    let bus = EventBus::new(Arc::new(broker.clone()), BusSettings::default());
    let seen: Arc<Mutex<Vec<TraceId>>> = Arc::default();
    let handler = {
        let seen = Arc::clone(&seen);
        handler_fn(move |_| {
            let trace_id = tracing::Span::current()
                .context()
                .span()
                .span_context()
                .trace_id();
            seen.lock().unwrap().push(trace_id);
            async { Ok(()) }
        })
    };
    let subscription = bus
        .subscribe(bus.subscription("user.registered", "welcome"), handler)
        .await
        .unwrap();

    // The request that publishes belongs to a trace with a known id (from an upstream caller).
    let known = TraceId::from_hex(KNOWN_TRACE).unwrap();
    let upstream = SpanContext::new(
        known,
        SpanId::from_hex("00f067aa0ba902b7").unwrap(),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let request = tracing::info_span!("request");
    request
        .set_parent(Context::new().with_remote_span_context(upstream))
        .unwrap();
    let event = EventEnvelope::builder("user.registered", serde_json::json!({})).build();
    bus.publish(&event).instrument(request).await.unwrap();

    subscription
        .stats()
        .wait_until(Duration::from_secs(10), |s| s.handled == 1)
        .await
        .unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        vec![known],
        "the handler sees the publisher's trace id"
    );

    let message = broker
        .messages(&bus.topics().topic("user.registered"))
        .remove(0);
    let traceparent = &message.headers[headers::TRACEPARENT];
    assert!(
        traceparent.starts_with(&format!("00-{KNOWN_TRACE}-")),
        "{traceparent}"
    );
    let carried = trace_context::parse_traceparent(traceparent).unwrap();

    bus.shutdown().await.unwrap();
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let span = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no `{name}` span among {spans:?}"))
    };
    let (publish, handle) = (span("event.publish"), span("event.handle"));
    assert_eq!(publish.span_context.trace_id(), known);
    assert_eq!(
        carried.span_id(),
        publish.span_context.span_id(),
        "the header names the publish span"
    );
    assert_eq!(handle.span_context.trace_id(), known);
    assert_eq!(
        handle.parent_span_id,
        publish.span_context.span_id(),
        "the handle span's parent is the producer's publish span"
    );
}
