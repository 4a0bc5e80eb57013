//! The `event.handle` span around the rest of the stack, continuing the publisher's trace,
//! with the per-event log line (at `debug`) and the handling-time metric.

use std::time::Instant;

use async_trait::async_trait;
use tracing::Instrument;

use crate::consumer::{ConsumeLayer, Disposition, Inbound, Next};
use crate::telemetry::metrics::BusMetrics;
use crate::telemetry::trace_context;

/// Traces, logs and times the handling of each decoded event.
#[derive(Clone, Copy, Debug)]
pub struct Trace {
    /// The backend named in the span and the metrics.
    pub backend: &'static str,
}

#[async_trait]
impl ConsumeLayer for Trace {
    async fn consume(&self, inbound: &mut Inbound<'_>, next: Next<'_>) -> Disposition {
        let Some(envelope) = inbound.envelope() else {
            return next.run(inbound).await;
        };
        let config = inbound.config();
        let span = tracing::info_span!(
            "event.handle",
            backend = self.backend,
            topic = %config.topic,
            subscription = %config.consumer_group,
            event_id = %envelope.id,
            event_type = %envelope.event_type,
            aggregate_id = %envelope.aggregate_id,
            correlation_id = %envelope.correlation_id,
            attempt = inbound.attempt(),
            outcome = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
            trace_id = tracing::field::Empty,
        );
        trace_context::continue_trace(&span, &inbound.message().headers);
        let backend = self.backend;
        async move {
            let started = Instant::now();
            let disposition = next.run(inbound).await;
            let elapsed = started.elapsed();
            let latency_ms = elapsed.as_secs_f64() * 1000.0;
            let span = tracing::Span::current();
            span.record("latency_ms", latency_ms);
            span.record("outcome", disposition.name());
            if let Some(envelope) = inbound.envelope() {
                BusMetrics::new(backend).handle_duration(&envelope.event_type, elapsed);
                tracing::debug!(
                    target: "event_bus",
                    operation = "handle",
                    eventType = %envelope.event_type,
                    eventId = %envelope.id,
                    aggregateId = %envelope.aggregate_id,
                    latencyMs = latency_ms,
                    outcome = disposition.name(),
                    "event handled"
                );
            }
            disposition
        }
        .instrument(span)
        .await
    }
}
