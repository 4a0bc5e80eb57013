//! Everything a subscription is opened with.

use std::time::Duration;

use crate::retry::RetryPolicy;

/// Deliveries a subscription handles at once unless told otherwise (`MAX_CONCURRENT_MESSAGES`).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 16;

/// How long a handler may run unless told otherwise (`WORKER_TIMEOUT`).
pub const DEFAULT_HANDLER_TIMEOUT: Duration = Duration::from_secs(300);

/// The consumer group that keeps dead letters when `DEAD_LETTER_SUBSCRIPTION` is not set.
pub const DEFAULT_DEAD_LETTER_SUBSCRIPTION: &str = "eventbus-dead-letters";

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
    /// A handler still running after this long is cancelled and its attempt fails, retryably;
    /// `None`: no limit.
    pub handler_timeout: Option<Duration>,
    /// Delays between attempts of a failed delivery.
    pub retry: RetryPolicy,
    /// Where events go that cannot be handled; `None` keeps retrying forever.
    pub dead_letter_topic: Option<String>,
    /// The consumer group that keeps the dead-letter topic's messages until `eventbus dlq`
    /// reads them. Backends that keep messages only for groups that exist (Pub/Sub, RabbitMQ)
    /// create it together with the dead-letter topic, so no dead letter is dropped.
    pub dead_letter_subscription: String,
    /// Attempts before a failing event is dead-lettered.
    pub max_delivery_attempts: u32,
    /// Only events whose `tenant_id` attribute names this tenant are handled; others are
    /// acknowledged and skipped, and an event whose envelope names another tenant than its
    /// attribute is dead-lettered (`tenant-mismatch`).
    pub tenant: Option<String>,
    /// The group belongs to one running instance (saga replies, `eventbus tail`): it is
    /// removed from the broker when the subscription closes, expires there when its owner
    /// dies without closing, and gets no durable retry machinery of its own.
    pub ephemeral: bool,
}

impl SubscriptionConfig {
    /// A subscription of `consumer_group` on `topic` with default policies.
    pub fn new(topic: impl Into<String>, consumer_group: impl Into<String>) -> Self {
        Self {
            topic: topic.into(),
            consumer_group: consumer_group.into(),
            ordering: false,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            handler_timeout: Some(DEFAULT_HANDLER_TIMEOUT),
            retry: RetryPolicy::default(),
            dead_letter_topic: None,
            dead_letter_subscription: DEFAULT_DEAD_LETTER_SUBSCRIPTION.to_owned(),
            max_delivery_attempts: 5,
            tenant: None,
            ephemeral: false,
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

    /// Sets the handler time limit (`None`: no limit).
    #[must_use]
    pub fn handler_timeout(mut self, limit: Option<Duration>) -> Self {
        self.handler_timeout = limit;
        self
    }

    /// Makes the group instance-scoped: removed when the subscription closes, expiring on
    /// the broker when its owner dies (see [`ephemeral`](Self::ephemeral)).
    #[must_use]
    pub fn ephemeral(mut self) -> Self {
        self.ephemeral = true;
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

    /// Sets the consumer group that keeps dead letters (see
    /// [`dead_letter_subscription`](Self::dead_letter_subscription)).
    #[must_use]
    pub fn dead_letter_subscription(mut self, group: impl Into<String>) -> Self {
        self.dead_letter_subscription = group.into();
        self
    }

    /// Sets the attempts before dead-lettering (at least 1).
    #[must_use]
    pub fn max_delivery_attempts(mut self, attempts: u32) -> Self {
        self.max_delivery_attempts = attempts.max(1);
        self
    }

    /// Handles only events of this tenant, in a consumer group of its own
    /// (`{group}-tenant-{tenant}`): members filtering for different tenants never share a
    /// group, where one would acknowledge away the events the other should handle.
    #[must_use]
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        let tenant = tenant.into();
        if let Some(previous) = &self.tenant
            && let Some(base) = self
                .consumer_group
                .strip_suffix(&format!("-tenant-{previous}"))
        {
            self.consumer_group = base.to_owned();
        }
        self.consumer_group = format!("{}-tenant-{tenant}", self.consumer_group);
        self.tenant = Some(tenant);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_subscription_has_a_consumer_group_of_its_own() {
        let acme = SubscriptionConfig::new("t", "g").tenant("acme");
        assert_eq!(acme.consumer_group, "g-tenant-acme");
        assert_eq!(acme.tenant.as_deref(), Some("acme"));
        let moved = acme.tenant("globex");
        assert_eq!(moved.consumer_group, "g-tenant-globex");
    }
}
