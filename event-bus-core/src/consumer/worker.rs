//! The consume loop: takes deliveries, runs each through the consume stack, and carries out
//! the disposition the stack decided: ack, a broker-side retry, or a dead letter.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::disposition::Disposition;
use super::layers::RetryDecision;
use super::stack::{ConsumeStack, Inbound};
use super::stats::{Outcome, SubscriptionStats};
use crate::dead_letter::{DeadLetterReason, FailureReport, headers};
use crate::envelope::wire_headers;
use crate::error::BusError;
use crate::telemetry::metrics::BusMetrics;
use crate::transport::{Delivery, Nack, Publisher, Subscription, SubscriptionConfig};

/// Pause after the subscription reports a broker error, before asking again.
const ERROR_PAUSE: Duration = Duration::from_millis(200);

/// Everything a worker needs to process deliveries of one subscription.
pub(crate) struct Worker {
    pub(crate) config: SubscriptionConfig,
    pub(crate) stack: ConsumeStack,
    pub(crate) publisher: Arc<dyn Publisher>,
    pub(crate) stats: Arc<SubscriptionStats>,
    metrics: BusMetrics,
}

impl Worker {
    pub(crate) fn new(
        config: SubscriptionConfig,
        stack: ConsumeStack,
        publisher: Arc<dyn Publisher>,
        backend: &'static str,
    ) -> Self {
        Self {
            config,
            stack,
            publisher,
            stats: Arc::default(),
            metrics: BusMetrics::new(backend),
        }
    }

    /// Runs until `shutdown` fires or the subscription ends, then finishes every delivery in
    /// flight and closes the subscription. At most `max_in_flight` deliveries are handled at
    /// once.
    pub(crate) async fn run(
        self: Arc<Self>,
        mut subscription: Box<dyn Subscription>,
        shutdown: CancellationToken,
    ) {
        let limit = self.config.max_in_flight.max(1);
        let mut in_flight = JoinSet::new();
        loop {
            if in_flight.len() >= limit {
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => break,
                    Some(done) = in_flight.join_next() => log_task_failure(done),
                }
                continue;
            }
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
                    in_flight.spawn(async move { worker.process(delivery).await });
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
        let mut inbound = Inbound::new(delivery.message(), delivery.attempt(), &self.config);
        let disposition = self.stack.run(&mut inbound).await;
        let event_type = inbound.event_type().to_owned();
        self.carry_out(delivery, disposition, &event_type).await;
    }

    async fn carry_out(
        &self,
        mut delivery: Box<dyn Delivery>,
        disposition: Disposition,
        event_type: &str,
    ) {
        let disposition = match disposition {
            Disposition::Failed(error) => {
                RetryDecision::decide(error, delivery.attempt(), &self.config)
            }
            decided => decided,
        };
        match disposition {
            Disposition::Handled => self.settle(event_type, delivery.ack().await, Outcome::Handled),
            Disposition::Skipped => self.settle(event_type, delivery.ack().await, Outcome::Skipped),
            Disposition::Failed(_) => unreachable!("decided above"),
            Disposition::Retry { after } => {
                self.failed(event_type);
                if !delivery
                    .message()
                    .headers
                    .contains_key(headers::FAILING_SINCE)
                {
                    let since = self.first_failure_at(delivery.as_ref(), true, Utc::now());
                    delivery.set_header(headers::FAILING_SINCE, rfc3339(since));
                }
                let result = delivery.nack(Nack::RequeueAfter(after)).await;
                self.settle(event_type, result, Outcome::Retried);
            }
            Disposition::Defer { after } => {
                let result = delivery.nack(Nack::RequeueAfter(after)).await;
                self.settle(event_type, result, Outcome::Retried);
            }
            Disposition::DeadLetter { reason, error } => {
                if reason.is_handler_failure() {
                    self.failed(event_type);
                }
                self.dead_letter(delivery, event_type, reason, error).await;
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
    ) {
        let Some(topic) = &self.config.dead_letter_topic else {
            tracing::error!(%reason, %error, topic = %self.config.topic, "no dead-letter topic configured; retrying");
            return self.retry_later(delivery, event_type).await;
        };
        let now = Utc::now();
        let report = FailureReport {
            reason,
            error,
            attempts: delivery.attempt(),
            original_topic: &self.config.topic,
            subscription: &self.config.consumer_group,
            first_failure_at: self.first_failure_at(
                delivery.as_ref(),
                reason.is_handler_failure(),
                now,
            ),
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
                self.retry_later(delivery, event_type).await;
            }
        }
    }

    /// The first failure of the event in this group: carried in the message where the
    /// backend delivers retries as copies, otherwise reckoned back from the attempt and the
    /// retry schedule, so every member of the group reports the same. `now` when the handler
    /// did not fail (the event could not be handled at all).
    fn first_failure_at(
        &self,
        delivery: &dyn Delivery,
        handler_failed: bool,
        now: DateTime<Utc>,
    ) -> DateTime<Utc> {
        let carried = delivery
            .message()
            .headers
            .get(headers::FAILING_SINCE)
            .and_then(|time| DateTime::parse_from_rfc3339(time).ok());
        match carried {
            Some(time) => time.with_timezone(&Utc),
            None if handler_failed => {
                let before = self.config.retry.nominal_delay_before(delivery.attempt());
                chrono::Duration::from_std(before).map_or(now, |before| now - before)
            }
            None => now,
        }
    }

    async fn retry_later(&self, delivery: Box<dyn Delivery>, event_type: &str) {
        let delay = self.config.retry.delay_after(delivery.attempt());
        let result = delivery.nack(Nack::RequeueAfter(delay)).await;
        self.settle(event_type, result, Outcome::Retried);
    }

    fn failed(&self, event_type: &str) {
        self.stats.record(Outcome::Failed);
        self.metrics.failed(event_type);
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
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn log_task_failure(result: Result<(), tokio::task::JoinError>) {
    if let Err(error) = result {
        tracing::error!(%error, "a delivery task failed");
    }
}
