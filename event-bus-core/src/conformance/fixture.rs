//! What every case needs: fresh names, buses on new connections, events, and waiting.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::ConformanceTarget;
use crate::bus::EventBus;
use crate::config::BusSettings;
use crate::envelope::EventEnvelope;
use crate::message::Message;
use crate::retry::RetryPolicy;
use crate::transport::{Broker, Delivery, Subscription, SubscriptionConfig};

/// Longest a case waits for something that should happen; reaching it fails the case.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// Unique names for one case, so cases never see each other's events.
pub struct Fixture<'a, T: ConformanceTarget + ?Sized> {
    target: &'a T,
    /// Settings every bus of the case uses; the topic prefix is unique to the case.
    pub settings: BusSettings,
}

impl<'a, T: ConformanceTarget + ?Sized> Fixture<'a, T> {
    /// Settings with a fresh prefix, three attempts and a small message limit.
    pub fn new(target: &'a T) -> Self {
        let prefix = format!("conf-{}", Uuid::now_v7().simple());
        let mut settings = BusSettings::from_vars([("EVENT_BUS_TOPIC_PREFIX", prefix.as_str())])
            .expect("valid settings");
        settings.dead_letter_max_retries = 3;
        settings.max_message_bytes = 64 * 1024;
        Self { target, settings }
    }

    /// A bus on a new connection.
    pub async fn bus(&self) -> EventBus {
        EventBus::new(self.target.connect().await, self.settings.clone())
    }

    /// A raw client on a new connection.
    pub async fn broker(&self) -> Arc<dyn Broker> {
        self.target.connect().await
    }

    /// A raw subscription on a new connection.
    pub async fn subscribe_raw(&self, config: &SubscriptionConfig) -> Box<dyn Subscription> {
        self.broker()
            .await
            .subscribe(config)
            .await
            .expect("subscribe")
    }

    /// Topic of an event type.
    pub fn topic(&self, event_type: &str) -> String {
        self.settings.topic_names().topic(event_type)
    }

    /// A subscription with quick retries and the case's dead-letter topic.
    pub fn subscription(&self, event_type: &str, group: &str) -> SubscriptionConfig {
        let retry = RetryPolicy {
            immediate_attempts: 0,
            initial_backoff: Duration::from_millis(20),
            multiplier: 2.0,
            max_backoff: Duration::from_millis(200),
            jitter: 0.1,
        };
        SubscriptionConfig::new(
            self.topic(event_type),
            format!("{}-{group}", self.settings.subscription_prefix),
        )
        .retry(retry)
        .dead_letter_topic(&self.settings.dead_letter_topic)
        .max_delivery_attempts(self.settings.dead_letter_max_retries)
    }

    /// Event number `n` of a type: aggregate `agg-{n % 10}`, a unicode payload and headers.
    pub fn event(&self, event_type: &str, n: u64) -> EventEnvelope {
        let payload = serde_json::json!({
            "n": n,
            "name": "Zoë Ñandú 日本語 🚀",
            "nested": {"list": [1, 2.5, null, true], "quote": "\"escaped\" \\ text"},
        });
        EventEnvelope::builder(event_type, payload)
            .source("conformance")
            .aggregate("thing", format!("agg-{}", n % 10), n + 1)
            .header("x-greeting", "grüß dich ✓")
            .header("x-n", n.to_string())
            .build()
    }

    /// Opens a raw subscription on the dead-letter topic; open it before failures happen.
    pub async fn watch_dead_letters(&self) -> Box<dyn Subscription> {
        let config = SubscriptionConfig::new(
            &self.settings.dead_letter_topic,
            format!("{}-dlq-inspector", self.settings.subscription_prefix),
        );
        self.subscribe_raw(&config).await
    }
}

/// The next delivery of a raw subscription; fails the case if none arrives by `deadline`.
pub async fn next_delivery(
    subscription: &mut dyn Subscription,
    deadline: tokio::time::Instant,
) -> Box<dyn Delivery> {
    tokio::time::timeout_at(deadline, subscription.next())
        .await
        .unwrap_or_else(|_| panic!("no delivery arrived in time"))
        .expect("subscription ended early")
        .expect("receiving failed")
}

/// Acks and returns the next `count` messages of a raw subscription; fails the case after
/// [`TIMEOUT`].
pub async fn take_messages(subscription: &mut dyn Subscription, count: usize) -> Vec<Message> {
    let mut messages = Vec::with_capacity(count);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while messages.len() < count {
        let delivery = next_delivery(subscription, deadline).await;
        messages.push(delivery.message().clone());
        delivery.ack().await.expect("ack");
    }
    messages
}

/// Id of the event a raw message carries.
pub fn message_id(message: &Message) -> String {
    EventEnvelope::from_message(message)
        .expect("an envelope")
        .id
}

/// Ids of the given events.
pub fn ids<'a>(events: impl IntoIterator<Item = &'a EventEnvelope>) -> HashSet<String> {
    events.into_iter().map(|e| e.id.clone()).collect()
}

/// Ids of events carried by raw messages.
pub fn message_ids(messages: &[Message]) -> HashSet<String> {
    messages.iter().map(message_id).collect()
}

/// Publishes every event and fails the case on the first error.
pub async fn publish_all(bus: &EventBus, events: &[EventEnvelope]) {
    for event in events {
        bus.publish(event).await.expect("publish");
    }
}

/// The header map of a dead-lettered message, for assertions with readable failures.
pub fn header_map(message: &Message) -> BTreeMap<&str, &str> {
    message
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}
