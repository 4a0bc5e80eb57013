//! The in-memory backend: topics with consumer groups, per-key ordering, redelivery with delay.
//! It is the default bus and what unit tests run on; nothing survives the process. A topic
//! holds what some group has not settled, plus its latest settled messages (for groups that
//! join later), so memory stays bounded however many events pass through.

mod delivery;
mod group;
mod log;
mod subscription;
mod topic;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;

use crate::error::BusError;
use crate::kit::ClosedFlag;
use crate::message::Message;
use crate::transport::{
    Broker, Capabilities, Publisher, Subscriber, Subscription, SubscriptionConfig,
};

use subscription::MemorySubscription;
use topic::Topic;

/// Settled messages a topic keeps for groups that join later, unless told otherwise.
pub const DEFAULT_RETAINED_MESSAGES: usize = 10_000;

/// An in-process broker. Clones share the broker and the publisher's closed state;
/// [`connect`](InMemoryBroker::connect) makes another client with its own publisher.
#[derive(Clone)]
pub struct InMemoryBroker {
    topics: Arc<Mutex<HashMap<String, Arc<Topic>>>>,
    closed: Arc<ClosedFlag>,
    retained: usize,
}

impl Default for InMemoryBroker {
    fn default() -> Self {
        Self::with_retention(DEFAULT_RETAINED_MESSAGES)
    }
}

impl InMemoryBroker {
    /// A new, empty broker keeping [`DEFAULT_RETAINED_MESSAGES`] settled messages per topic.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new, empty broker whose topics keep, besides what some group has not settled, their
    /// latest `retained` messages: a group that joins later starts at the oldest one held.
    pub fn with_retention(retained: usize) -> Self {
        Self {
            topics: Arc::default(),
            closed: Arc::default(),
            retained,
        }
    }

    /// Another client of the same broker, as a second process would connect to a server.
    pub fn connect(&self) -> Self {
        Self {
            topics: Arc::clone(&self.topics),
            closed: Arc::default(),
            retained: self.retained,
        }
    }

    fn topic(&self, name: &str) -> Arc<Topic> {
        let mut topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(topic) = topics.get(name) {
            return Arc::clone(topic);
        }
        let topic = Arc::new(Topic::new(self.retained));
        topics.insert(name.to_owned(), Arc::clone(&topic));
        topic
    }

    /// The messages `topic` still holds, oldest first: those some group has not settled and
    /// the latest settled ones.
    pub fn messages(&self, topic: &str) -> Vec<Message> {
        self.topic(topic).lock().log.held()
    }

    /// How many messages were ever published to `topic`.
    pub fn published(&self, topic: &str) -> usize {
        self.topic(topic).lock().log.end()
    }

    /// The consumer groups `topic` has, sorted.
    pub fn consumer_groups(&self, topic: &str) -> Vec<String> {
        let mut groups: Vec<String> = self.topic(topic).lock().groups.keys().cloned().collect();
        groups.sort();
        groups
    }

    /// Messages of `topic` that `group` has not acknowledged yet.
    pub fn backlog(&self, topic: &str, group: &str) -> usize {
        let topic = self.topic(topic);
        let state = topic.lock();
        state
            .groups
            .get(group)
            .map_or(state.log.end() - state.log.start(), |g| {
                g.backlog(&state.log)
            })
    }

    /// Waits until at least `count` messages were published to `topic` and returns those it
    /// holds, or `None` after `timeout`.
    pub async fn wait_for_messages(
        &self,
        topic: &str,
        count: usize,
        timeout: Duration,
    ) -> Option<Vec<Message>> {
        let topic = self.topic(topic);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = topic.next_publish();
            {
                let state = topic.lock();
                if state.log.end() >= count {
                    return Some(state.log.held());
                }
            }
            tokio::time::timeout_at(deadline, changed).await.ok()?;
        }
    }
}

#[async_trait]
impl Publisher for InMemoryBroker {
    async fn publish(&self, topic: &str, message: Message) -> Result<(), BusError> {
        self.closed.ensure_open("publisher")?;
        self.topic(topic).publish(message);
        Ok(())
    }

    async fn close(&self) -> Result<(), BusError> {
        self.closed.close();
        Ok(())
    }
}

#[async_trait]
impl Subscriber for InMemoryBroker {
    async fn subscribe(
        &self,
        config: &SubscriptionConfig,
    ) -> Result<Box<dyn Subscription>, BusError> {
        let topic = self.topic(&config.topic);
        topic.lock().group(&config.consumer_group);
        Ok(Box::new(MemorySubscription {
            topic,
            group: config.consumer_group.as_str().into(),
            ordering: config.ordering,
            ephemeral: config.ephemeral,
        }))
    }
}

impl Broker for InMemoryBroker {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            consumer_groups: true,
            per_key_ordering: true,
            persistent: false,
            new_subscriber_receives_old_messages: true,
            can_restart_server: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn publish(broker: &InMemoryBroker, topic: &str, count: usize) {
        for n in 0..count {
            broker
                .publish(topic, Message::new(n.to_string()))
                .await
                .unwrap();
        }
    }

    async fn take(subscription: &mut Box<dyn Subscription>) -> Box<dyn crate::Delivery> {
        subscription
            .next()
            .await
            .expect("open")
            .expect("a delivery")
    }

    #[tokio::test]
    async fn a_topic_holds_what_a_group_has_not_settled_and_the_latest_settled_messages() {
        let broker = InMemoryBroker::with_retention(10);
        let config = SubscriptionConfig::new("t", "g");
        let mut member = broker.subscribe(&config).await.unwrap();
        publish(&broker, "t", 1_000).await;
        let first = take(&mut member).await;
        for _ in 1..1_000 {
            take(&mut member).await.ack().await.unwrap();
        }
        assert_eq!(
            broker.messages("t").len(),
            1_000,
            "the first message is unsettled, so everything after it is held"
        );
        first.ack().await.unwrap();
        assert_eq!(broker.messages("t").len(), 10);
        assert_eq!(broker.published("t"), 1_000);
        assert_eq!(broker.backlog("t", "g"), 0);

        let mut late = broker
            .subscribe(&SubscriptionConfig::new("t", "late"))
            .await
            .unwrap();
        let oldest = take(&mut late).await;
        assert_eq!(oldest.message().payload.as_ref(), b"990");
    }

    #[tokio::test]
    async fn a_topic_nobody_reads_keeps_its_latest_messages() {
        let broker = InMemoryBroker::with_retention(3);
        publish(&broker, "t", 10).await;
        let held: Vec<_> = broker
            .messages("t")
            .iter()
            .map(|m| m.payload.clone())
            .collect();
        assert_eq!(held, ["7", "8", "9"]);
    }

    #[tokio::test]
    async fn a_redelivery_keeps_its_message_held() {
        let broker = InMemoryBroker::with_retention(0);
        let mut member = broker
            .subscribe(&SubscriptionConfig::new("t", "g"))
            .await
            .unwrap();
        publish(&broker, "t", 2).await;
        let first = take(&mut member).await;
        take(&mut member).await.ack().await.unwrap();
        first
            .nack(crate::Nack::RequeueAfter(Duration::from_millis(10)))
            .await
            .unwrap();
        assert_eq!(broker.messages("t").len(), 2);
        let again = take(&mut member).await;
        assert_eq!(
            (again.message().payload.as_ref(), again.attempt()),
            (&b"0"[..], 2)
        );
        again.ack().await.unwrap();
        assert!(broker.messages("t").is_empty());
    }
}
