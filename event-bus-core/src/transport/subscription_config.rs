//! Everything a subscription is opened with.

use crate::retry::RetryPolicy;

/// Topic, consumer group and delivery policy of one subscription.
#[derive(Clone, Debug, PartialEq)]
pub struct SubscriptionConfig {
    /// Topic to consume.
    pub topic: String,
    /// Consumer group: every group gets every event; members of a group compete.
    pub consumer_group: String,
    /// Keep per-key (aggregate) order.
    pub ordering: bool,
    /// Deliveries handled at once by one subscriber.
    pub max_in_flight: usize,
    /// Delays between attempts of a failed delivery.
    pub retry: RetryPolicy,
    /// Where events go that cannot be handled; `None` keeps retrying forever.
    pub dead_letter_topic: Option<String>,
    /// Attempts before a failing event is dead-lettered.
    pub max_delivery_attempts: u32,
    /// Only events of this tenant are handled; others are acknowledged and skipped.
    pub tenant: Option<String>,
}

impl SubscriptionConfig {
    /// A subscription of `consumer_group` on `topic` with default policies.
    pub fn new(topic: impl Into<String>, consumer_group: impl Into<String>) -> Self {
        Self {
            topic: topic.into(),
            consumer_group: consumer_group.into(),
            ordering: false,
            max_in_flight: 16,
            retry: RetryPolicy::default(),
            dead_letter_topic: None,
            max_delivery_attempts: 5,
            tenant: None,
        }
    }

    /// Turns per-key ordering on or off.
    #[must_use]
    pub fn ordering(mut self, ordering: bool) -> Self {
        self.ordering = ordering;
        self
    }

    /// Sets how many deliveries are handled at once.
    #[must_use]
    pub fn max_in_flight(mut self, max_in_flight: usize) -> Self {
        self.max_in_flight = max_in_flight.max(1);
        self
    }

    /// Sets the retry policy.
    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the dead-letter topic.
    #[must_use]
    pub fn dead_letter_topic(mut self, topic: impl Into<String>) -> Self {
        self.dead_letter_topic = Some(topic.into());
        self
    }

    /// Sets the attempts before dead-lettering (at least 1).
    #[must_use]
    pub fn max_delivery_attempts(mut self, attempts: u32) -> Self {
        self.max_delivery_attempts = attempts.max(1);
        self
    }

    /// Handles only events of this tenant.
    #[must_use]
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }
}
