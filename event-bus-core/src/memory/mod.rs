//! The in-memory backend: topics with consumer groups, per-key ordering, redelivery with delay.
//! It is the default bus and what unit tests run on; nothing survives the process.

mod delivery;
mod group;
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

/// An in-process broker. Clones share the broker and the publisher's closed state;
/// [`connect`](InMemoryBroker::connect) makes another client with its own publisher.
#[derive(Clone, Default)]
pub struct InMemoryBroker {
    topics: Arc<Mutex<HashMap<String, Arc<Topic>>>>,
    closed: Arc<ClosedFlag>,
}

impl InMemoryBroker {
    /// A new, empty broker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Another client of the same broker, as a second process would connect to a server.
    pub fn connect(&self) -> Self {
        Self {
            topics: Arc::clone(&self.topics),
            closed: Arc::default(),
        }
    }

    fn topic(&self, name: &str) -> Arc<Topic> {
        let mut topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(topics.entry(name.to_owned()).or_default())
    }

    /// Every message ever published to `topic`, oldest first.
    pub fn messages(&self, topic: &str) -> Vec<Message> {
        self.topic(topic).lock().log.clone()
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
            .map_or(state.log.len(), |g| g.backlog(state.log.len()))
    }

    /// Waits until `topic` holds at least `count` messages and returns them all, or `None`
    /// after `timeout`.
    pub async fn wait_for_messages(
        &self,
        topic: &str,
        count: usize,
        timeout: Duration,
    ) -> Option<Vec<Message>> {
        let topic = self.topic(topic);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = topic.changed();
            {
                let state = topic.lock();
                if state.log.len() >= count {
                    return Some(state.log.clone());
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
        self.topic(topic).update(|state| state.log.push(message));
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
        topic
            .lock()
            .groups
            .entry(config.consumer_group.clone())
            .or_default();
        Ok(Box::new(MemorySubscription {
            topic,
            group: config.consumer_group.clone(),
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
