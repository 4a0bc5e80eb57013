//! Metrics through the `metrics` facade: whatever recorder the process installs (the
//! Prometheus exporter with feature `prometheus`, or none, which costs next to nothing).
//!
//! Every series is labelled with `backend` and, for events, `event_type`.

use std::time::Duration;

use metrics::{Label, counter, gauge, histogram};

/// Metric names.
pub mod names {
    /// Counter: events the broker accepted.
    pub const PUBLISHED: &str = "event_bus_published_total";
    /// Counter: publishes that failed.
    pub const PUBLISH_FAILED: &str = "event_bus_publish_failed_total";
    /// Counter: deliveries handled and acknowledged.
    pub const HANDLED: &str = "event_bus_handled_total";
    /// Counter: handler failures, panics included.
    pub const FAILED: &str = "event_bus_failed_total";
    /// Counter: deliveries put back for a later attempt.
    pub const RETRIED: &str = "event_bus_retried_total";
    /// Counter: deliveries moved to the dead-letter topic (label `reason` too).
    pub const DEAD_LETTERED: &str = "event_bus_dead_lettered_total";
    /// Counter: deliveries of another tenant, acknowledged without handling.
    pub const SKIPPED: &str = "event_bus_skipped_total";
    /// Histogram: seconds from publish call to the broker's acceptance.
    pub const PUBLISH_DURATION: &str = "event_bus_publish_duration_seconds";
    /// Histogram: seconds a handler took.
    pub const HANDLE_DURATION: &str = "event_bus_handle_duration_seconds";
    /// Gauge: dead letters written by this process minus dead letters this process took off
    /// the dead-letter topic (retried, parked or discarded); labels `backend` and `topic`.
    /// Summed over the processes of a deployment, it is the dead-letter queue's size.
    pub const DEAD_LETTER_QUEUE_SIZE: &str = "event_bus_dead_letter_queue_size";
}

/// Label value for events whose type is not known (a malformed payload).
pub const UNKNOWN_EVENT_TYPE: &str = "unknown";

/// Records the metrics of one backend.
#[derive(Clone, Copy, Debug)]
pub struct BusMetrics {
    backend: &'static str,
}

impl BusMetrics {
    /// Metrics labelled with `backend`.
    pub fn new(backend: &'static str) -> Self {
        Self { backend }
    }

    /// Built as the recorder takes them, so a series costs one allocation for the event type.
    fn labels(&self, event_type: &str) -> Vec<Label> {
        vec![
            Label::from_static_parts("backend", self.backend),
            Label::new("event_type", event_type.to_owned()),
        ]
    }

    /// A publish ended, accepted or not, after `elapsed`.
    pub fn published(&self, event_type: &str, ok: bool, elapsed: Duration) {
        self.published_many(event_type, usize::from(ok), usize::from(!ok), elapsed);
    }

    /// A batch of one event type ended after `elapsed`: `accepted` events taken by the broker,
    /// `failed` not.
    pub fn published_many(
        &self,
        event_type: &str,
        accepted: usize,
        failed: usize,
        elapsed: Duration,
    ) {
        let labels = self.labels(event_type);
        histogram!(names::PUBLISH_DURATION, labels.clone())
            .record_many(elapsed.as_secs_f64(), accepted + failed);
        // The last series recorded takes the labels themselves instead of a copy.
        if failed == 0 {
            counter!(names::PUBLISHED, labels).increment(accepted as u64);
            return;
        }
        if accepted > 0 {
            counter!(names::PUBLISHED, labels.clone()).increment(accepted as u64);
        }
        counter!(names::PUBLISH_FAILED, labels).increment(failed as u64);
    }

    /// A handler ran for `elapsed`.
    pub fn handle_duration(&self, event_type: &str, elapsed: Duration) {
        histogram!(names::HANDLE_DURATION, self.labels(event_type)).record(elapsed.as_secs_f64());
    }

    /// A delivery was handled.
    pub fn handled(&self, event_type: &str) {
        counter!(names::HANDLED, self.labels(event_type)).increment(1);
    }

    /// A handler failed.
    pub fn failed(&self, event_type: &str) {
        counter!(names::FAILED, self.labels(event_type)).increment(1);
    }

    /// A delivery was put back for a later attempt.
    pub fn retried(&self, event_type: &str) {
        counter!(names::RETRIED, self.labels(event_type)).increment(1);
    }

    /// A delivery of another tenant was skipped.
    pub fn skipped(&self, event_type: &str) {
        counter!(names::SKIPPED, self.labels(event_type)).increment(1);
    }

    /// A delivery went to the dead-letter topic `topic` for `reason`.
    pub fn dead_lettered(&self, event_type: &str, reason: &str, topic: &str) {
        let mut labels = self.labels(event_type);
        labels.push(Label::new("reason", reason.to_owned()));
        counter!(names::DEAD_LETTERED, labels).increment(1);
        self.dead_letter_queue_changed(topic, 1.0);
    }

    /// A dead letter was taken off the dead-letter topic `topic`.
    pub fn dead_letter_removed(&self, topic: &str) {
        self.dead_letter_queue_changed(topic, -1.0);
    }

    fn dead_letter_queue_changed(&self, topic: &str, delta: f64) {
        let labels = [
            ("backend", self.backend.to_owned()),
            ("topic", topic.to_owned()),
        ];
        gauge!(names::DEAD_LETTER_QUEUE_SIZE, &labels).increment(delta);
    }
}
