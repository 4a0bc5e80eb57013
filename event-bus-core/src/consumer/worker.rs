//! The consume loop: takes deliveries, runs the handler, and acks, retries or dead-letters.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::FutureExt;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::stats::{Outcome, SubscriptionStats};
use crate::dead_letter::{DeadLetterReason, FailureReport, REDRIVE_SUBSCRIPTION_HEADER};
use crate::envelope::{EventEnvelope, header_tenant, wire_headers};
use crate::error::BusError;
use crate::handler::{Handler, HandlerError, HandlerPanicked};
use crate::telemetry::metrics::{BusMetrics, UNKNOWN_EVENT_TYPE};
use crate::telemetry::trace_context;
use crate::transport::{Delivery, Nack, Publisher, Subscription, SubscriptionConfig};

/// Pause after the subscription reports a broker error, before asking again.
const ERROR_PAUSE: Duration = Duration::from_millis(200);

/// Everything a worker needs to process deliveries of one subscription.
pub(crate) struct Worker {
    pub(crate) config: SubscriptionConfig,
    pub(crate) handler: Arc<dyn Handler>,
    pub(crate) publisher: Arc<dyn Publisher>,
    pub(crate) stats: Arc<SubscriptionStats>,
    pub(crate) max_message_bytes: usize,
    pub(crate) backend: &'static str,
    metrics: BusMetrics,
    first_failures: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl Worker {
    pub(crate) fn new(
        config: SubscriptionConfig,
        handler: Arc<dyn Handler>,
        publisher: Arc<dyn Publisher>,
        max_message_bytes: usize,
        backend: &'static str,
    ) -> Self {
        Self {
            config,
            handler,
            publisher,
            stats: Arc::default(),
            max_message_bytes,
            backend,
            metrics: BusMetrics::new(backend),
            first_failures: Mutex::default(),
        }
    }

    /// Runs until `shutdown` fires or the subscription ends, then finishes every delivery in
    /// flight and closes the subscription.
    pub(crate) async fn run(
        self: Arc<Self>,
        mut subscription: Box<dyn Subscription>,
        shutdown: CancellationToken,
    ) {
        let slots = Arc::new(Semaphore::new(self.config.max_in_flight));
        let mut in_flight = JoinSet::new();
        loop {
            let slot = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            };
            let next = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                next = subscription.next() => next,
            };
            match next {
                None => break,
                Some(Err(error)) => {
                    tracing::warn!(topic = %self.config.topic, %error, "receiving failed; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(ERROR_PAUSE) => {}
                    }
                }
                Some(Ok(delivery)) => {
                    let worker = Arc::clone(&self);
                    in_flight.spawn(async move {
                        worker.process(delivery).await;
                        drop(slot);
                    });
                }
            }
            while let Some(done) = in_flight.try_join_next() {
                log_task_failure(done);
            }
        }
        while let Some(done) = in_flight.join_next().await {
            log_task_failure(done);
        }
        if let Err(error) = subscription.close().await {
            tracing::warn!(topic = %self.config.topic, %error, "closing the subscription failed");
        }
    }

    async fn process(&self, delivery: Box<dyn Delivery>) {
        self.stats.record(Outcome::Received);
        let message = delivery.message();
        let event_type = message
            .headers
            .get(wire_headers::EVENT_TYPE)
            .cloned()
            .unwrap_or_else(|| UNKNOWN_EVENT_TYPE.to_owned());
        let event_type = event_type.as_str();
        if let Some(target) = message.headers.get(REDRIVE_SUBSCRIPTION_HEADER)
            && *target != self.config.consumer_group
        {
            // A redrive for the group that dead-lettered the event; this group is done with it.
            tracing::debug!(topic = %self.config.topic, redriven_for = %target, "redrive for another group skipped");
            return self.settle(event_type, delivery.ack().await, Outcome::Skipped);
        }
        let header_tenant = header_tenant(message);
        if let Some(tenant) = &self.config.tenant
            && header_tenant.is_some_and(|named| named != tenant)
        {
            // The tenant filter, by the `tenant_id` attribute, as a broker-side filter would.
            tracing::debug!(topic = %self.config.topic, wanted = %tenant, "event of another tenant skipped");
            return self.settle(event_type, delivery.ack().await, Outcome::Skipped);
        }
        // A tenant group reads the tenant of a message without the attribute from the event;
        // an event it cannot read (oversize, malformed) names no tenant of this group's, so it
        // is skipped here (groups without a tenant dead-letter it).
        let unreadable_tenant = self.config.tenant.is_some() && header_tenant.is_none();
        // After the tenant filter: another tenant's oversize message is not this group's to
        // dead-letter.
        if message.size() > self.max_message_bytes {
            if unreadable_tenant {
                tracing::debug!(topic = %self.config.topic, "oversize event without a tenant attribute skipped by a tenant group");
                return self.settle(event_type, delivery.ack().await, Outcome::Skipped);
            }
            let error = BusError::MessageTooLarge {
                size: message.size(),
                limit: self.max_message_bytes,
            }
            .to_string();
            return self
                .dead_letter(
                    delivery,
                    event_type,
                    DeadLetterReason::Oversize,
                    error,
                    None,
                )
                .await;
        }
        let envelope = match EventEnvelope::from_message(message) {
            Ok(envelope) => envelope,
            Err(_) if unreadable_tenant => {
                tracing::debug!(topic = %self.config.topic, "malformed event without a tenant attribute skipped by a tenant group");
                return self.settle(event_type, delivery.ack().await, Outcome::Skipped);
            }
            Err(error) => {
                return self
                    .dead_letter(
                        delivery,
                        event_type,
                        DeadLetterReason::MalformedPayload,
                        error.to_string(),
                        None,
                    )
                    .await;
            }
        };
        if let Some(tenant) = &self.config.tenant
            && envelope.tenant_id.as_ref() != Some(tenant)
        {
            if header_tenant.is_none() {
                // Only the event itself names its tenant, and it is another (or none).
                tracing::debug!(topic = %self.config.topic, wanted = %tenant, "event of another tenant skipped");
                return self.settle(event_type, delivery.ack().await, Outcome::Skipped);
            }
            let error = format!(
                "event of tenant `{}` carried with the attribute of tenant `{tenant}`",
                envelope.tenant_id.as_deref().unwrap_or_default()
            );
            return self
                .dead_letter(
                    delivery,
                    event_type,
                    DeadLetterReason::TenantMismatch,
                    error,
                    Some(&envelope),
                )
                .await;
        }

        let span = tracing::info_span!(
            "event.handle",
            backend = self.backend,
            topic = %self.config.topic,
            subscription = %self.config.consumer_group,
            event_id = %envelope.id,
            event_type = %envelope.event_type,
            aggregate_id = %envelope.aggregate_id,
            correlation_id = %envelope.correlation_id,
            attempt = delivery.attempt(),
            outcome = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
            trace_id = tracing::field::Empty,
        );
        trace_context::continue_trace(&span, &delivery.message().headers);
        self.handle(delivery, envelope).instrument(span).await;
    }

    /// Runs the handler and settles the delivery by its outcome, inside the `event.handle` span.
    async fn handle(&self, delivery: Box<dyn Delivery>, envelope: EventEnvelope) {
        let event_type = envelope.event_type.clone();
        let event_type = event_type.as_str();
        let span = tracing::Span::current();
        let started = Instant::now();
        let outcome = AssertUnwindSafe(self.handler.handle(&envelope))
            .catch_unwind()
            .await
            .unwrap_or_else(|payload| {
                Err(HandlerError::retryable(HandlerPanicked::from_payload(
                    &*payload,
                )))
            });
        let elapsed = started.elapsed();
        span.record("latency_ms", elapsed.as_secs_f64() * 1000.0);
        self.metrics.handle_duration(event_type, elapsed);
        let latency_ms = elapsed.as_secs_f64() * 1000.0;
        match &outcome {
            Ok(()) => tracing::debug!(
                target: "event_bus",
                operation = "handle",
                eventType = %envelope.event_type,
                eventId = %envelope.id,
                aggregateId = %envelope.aggregate_id,
                latencyMs = latency_ms,
                "event handled"
            ),
            // Routine for a retryable failure; a dead-lettering logs its own warning.
            Err(error) => tracing::debug!(
                target: "event_bus",
                operation = "handle",
                eventType = %envelope.event_type,
                eventId = %envelope.id,
                aggregateId = %envelope.aggregate_id,
                latencyMs = latency_ms,
                %error,
                "handler failed"
            ),
        }
        let (permanent, error) = match outcome {
            Ok(()) => {
                span.record("outcome", "handled");
                self.forget_failures(&envelope);
                return self.settle(event_type, delivery.ack().await, Outcome::Handled);
            }
            Err(HandlerError::Deferred { after, reason }) => {
                span.record("outcome", "deferred");
                tracing::debug!(
                    delay_ms = after.as_millis() as u64,
                    %reason,
                    "not handled now; delivering it again later"
                );
                return self.settle(
                    event_type,
                    delivery.nack(Nack::RequeueAfter(after)).await,
                    Outcome::Retried,
                );
            }
            Err(HandlerError::Permanent(error)) => (true, error),
            Err(HandlerError::Retryable(error)) => (false, error),
        };
        self.stats.record(Outcome::Failed);
        self.metrics.failed(event_type);
        let attempt = delivery.attempt();
        match (permanent, error) {
            (true, error) => {
                span.record("outcome", "dead-lettered");
                let error = error.to_string();
                self.dead_letter(
                    delivery,
                    event_type,
                    DeadLetterReason::PermanentFailure,
                    error,
                    Some(&envelope),
                )
                .await;
            }
            (false, error) if attempt >= self.config.max_delivery_attempts => {
                span.record("outcome", "dead-lettered");
                let error = format!("{error} (after {attempt} attempts)");
                self.dead_letter(
                    delivery,
                    event_type,
                    DeadLetterReason::MaxAttemptsExceeded,
                    error,
                    Some(&envelope),
                )
                .await;
            }
            (false, error) => {
                span.record("outcome", "retried");
                self.first_failure_of(&envelope);
                let delay = self.config.retry.delay_after(attempt);
                tracing::debug!(%error, delay_ms = delay.as_millis() as u64, "handler failed; retrying later");
                self.settle(
                    event_type,
                    delivery.nack(Nack::RequeueAfter(delay)).await,
                    Outcome::Retried,
                );
            }
        }
    }

    /// Publishes the untouched message with failure headers to the dead-letter topic, then acks.
    /// Without a dead-letter topic, or if publishing there fails, the delivery is retried later.
    async fn dead_letter(
        &self,
        delivery: Box<dyn Delivery>,
        event_type: &str,
        reason: DeadLetterReason,
        error: String,
        envelope: Option<&EventEnvelope>,
    ) {
        let Some(topic) = &self.config.dead_letter_topic else {
            tracing::error!(%reason, %error, topic = %self.config.topic, "no dead-letter topic configured; retrying");
            let delay = self.config.retry.delay_after(delivery.attempt());
            return self.settle(
                event_type,
                delivery.nack(Nack::RequeueAfter(delay)).await,
                Outcome::Retried,
            );
        };
        let now = Utc::now();
        let first_failure_at = envelope.map_or(now, |e| self.forget_failures(e).unwrap_or(now));
        let report = FailureReport {
            reason,
            error,
            attempts: delivery.attempt(),
            original_topic: &self.config.topic,
            subscription: &self.config.consumer_group,
            first_failure_at,
            last_failure_at: now,
        };
        let message = report.dead_letter_message(delivery.message());
        let event_id = delivery
            .message()
            .headers
            .get(wire_headers::EVENT_ID)
            .cloned()
            .unwrap_or_default();
        match self.publisher.publish(topic, message).await {
            Ok(()) => {
                tracing::warn!(%reason, error = %report.error, %event_id, dead_letter_topic = %topic, "event dead-lettered");
                self.metrics
                    .dead_lettered(event_type, reason.as_str(), topic);
                self.settle(event_type, delivery.ack().await, Outcome::DeadLettered);
            }
            Err(publish_error) => {
                tracing::error!(%publish_error, %event_id, "dead-lettering failed; the event will be redelivered");
                let delay = self.config.retry.delay_after(delivery.attempt());
                self.settle(
                    event_type,
                    delivery.nack(Nack::RequeueAfter(delay)).await,
                    Outcome::Retried,
                );
            }
        }
    }

    fn settle(&self, event_type: &str, result: Result<(), BusError>, outcome: Outcome) {
        match result {
            Ok(()) => {
                // Metrics first: whoever waits on the stats then sees the metrics moved too.
                match outcome {
                    Outcome::Handled => self.metrics.handled(event_type),
                    Outcome::Skipped => self.metrics.skipped(event_type),
                    Outcome::Retried => self.metrics.retried(event_type),
                    Outcome::Received | Outcome::Failed | Outcome::DeadLettered => {}
                }
                self.stats.record(outcome);
            }
            Err(error) => {
                tracing::warn!(%error, topic = %self.config.topic, "settling a delivery failed; the broker will redeliver it")
            }
        }
    }

    fn first_failure_of(&self, envelope: &EventEnvelope) {
        let mut failures = self
            .first_failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        failures.entry(envelope.id.clone()).or_insert_with(Utc::now);
    }

    fn forget_failures(&self, envelope: &EventEnvelope) -> Option<DateTime<Utc>> {
        let mut failures = self
            .first_failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        failures.remove(&envelope.id)
    }
}

fn log_task_failure(result: Result<(), tokio::task::JoinError>) {
    if let Err(error) = result {
        tracing::error!(%error, "a delivery task failed");
    }
}
