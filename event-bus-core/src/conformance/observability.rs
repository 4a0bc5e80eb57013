//! Observability across the broker: the W3C trace context headers reach the consumer.

use super::ConformanceTarget;
use super::fixture::{Fixture, take_messages};
use crate::envelope::EventEnvelope;
use crate::telemetry::trace_context::{self, headers};
use crate::transport::SubscriptionConfig;

/// A message published with `traceparent` and `tracestate` arrives with both intact, and the
/// consumer reads the producer's span context from them.
pub async fn trace_context_headers_reach_the_consumer(target: &(impl ConformanceTarget + ?Sized)) {
    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const TRACESTATE: &str = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";
    let fixture = Fixture::new(target);
    let topic = fixture.topic("traced.event");
    let mut subscription = fixture
        .subscribe_raw(&SubscriptionConfig::new(
            &topic,
            format!("{}-traced", fixture.settings.subscription_prefix),
        ))
        .await;
    let event = EventEnvelope::builder("traced.event", serde_json::json!({})).build();
    let message = event
        .to_message()
        .expect("encode")
        .with_header(headers::TRACEPARENT, TRACEPARENT)
        .with_header(headers::TRACESTATE, TRACESTATE);
    let broker = fixture.broker().await;
    broker.publish(&topic, message).await.expect("publish");

    let received = take_messages(subscription.as_mut(), 1).await.remove(0);
    assert_eq!(
        received
            .headers
            .get(headers::TRACEPARENT)
            .map(String::as_str),
        Some(TRACEPARENT)
    );
    assert_eq!(
        received
            .headers
            .get(headers::TRACESTATE)
            .map(String::as_str),
        Some(TRACESTATE)
    );
    let context = trace_context::extract(&received.headers).expect("a valid trace context");
    assert_eq!(
        trace_context::format_traceparent(&context),
        TRACEPARENT,
        "the consumer continues the producer's span"
    );
    subscription.close().await.expect("close");
    broker.close().await.expect("close");
}
