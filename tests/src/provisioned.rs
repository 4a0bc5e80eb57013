//! A least-privileged broker with an administrator beside it, as if `eventbus setup` had run
//! before each subscription: how the conformance cases run under `EVENT_BUS_TOPOLOGY=existing`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use event_bus_core::{
    Broker, BusError, Capabilities, Message, Publisher, Subscriber, Subscription,
    SubscriptionConfig, TopologyItem,
};

/// The group the administrator provisions on a topic that is published to before any group of
/// the case subscribed, so the topic exists (as `eventbus setup` makes it).
pub const TOPIC_KEEPER: &str = "conformance-setup";

/// Publishes and subscribes as `restricted` (a broker connected with
/// `EVENT_BUS_TOPOLOGY=existing`); `admin` (the default mode) first creates what each topic and
/// subscription needs ([`Subscriber::provision`]).
pub struct Provisioned {
    admin: Arc<dyn Broker>,
    restricted: Arc<dyn Broker>,
    topics: Mutex<HashSet<String>>,
}

impl Provisioned {
    /// `restricted` works on what `admin` created.
    pub fn new(admin: Arc<dyn Broker>, restricted: Arc<dyn Broker>) -> Self {
        Self {
            admin,
            restricted,
            topics: Mutex::default(),
        }
    }

    async fn provision(&self, config: &SubscriptionConfig) -> Result<(), BusError> {
        self.admin.provision(config).await?;
        self.topics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(config.topic.clone());
        Ok(())
    }

    async fn provision_topic(&self, topic: &str) -> Result<(), BusError> {
        let known = self
            .topics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(topic);
        if known {
            return Ok(());
        }
        self.provision(&SubscriptionConfig::new(topic, TOPIC_KEEPER))
            .await
    }
}

#[async_trait]
impl Publisher for Provisioned {
    async fn publish(&self, topic: &str, message: Message) -> Result<(), BusError> {
        self.provision_topic(topic).await?;
        self.restricted.publish(topic, message).await
    }

    async fn publish_batch(
        &self,
        topic: &str,
        messages: Vec<Message>,
    ) -> Vec<Result<(), BusError>> {
        if let Err(error) = self.provision_topic(topic).await {
            let refused = error.to_string();
            return messages
                .iter()
                .map(|_| Err(BusError::backend("setup", refused.clone())))
                .collect();
        }
        self.restricted.publish_batch(topic, messages).await
    }

    async fn close(&self) -> Result<(), BusError> {
        self.restricted.close().await?;
        self.admin.close().await
    }
}

#[async_trait]
impl Subscriber for Provisioned {
    async fn subscribe(
        &self,
        config: &SubscriptionConfig,
    ) -> Result<Box<dyn Subscription>, BusError> {
        if !config.ephemeral {
            self.provision(config).await?;
        }
        self.restricted.subscribe(config).await
    }
}

impl Broker for Provisioned {
    fn name(&self) -> &'static str {
        self.restricted.name()
    }

    fn capabilities(&self) -> Capabilities {
        self.restricted.capabilities()
    }

    fn topology(&self, config: &SubscriptionConfig) -> Vec<TopologyItem> {
        self.restricted.topology(config)
    }
}

/// The conformance cases a least-privileged bus must pass: delivery, groups, redelivery,
/// retries into dead letters, bad input and duplicates. Expands to one test per case, as
/// [`event_bus_core::conformance_tests!`] does, for a target built by `$target`; or, with
/// `one_test $name, $target`, to one test `$name` running every case in turn on one target
/// (for a target that is slow to start, such as a server of the test's own).
#[macro_export]
macro_rules! least_privilege_conformance_tests {
    ($target:expr) => {
        $crate::least_privilege_conformance_tests!(@list [@each $target]);
    };
    (one_test $name:ident, $target:expr) => {
        $crate::least_privilege_conformance_tests!(@list [@one $name, $target]);
    };
    (@list [$($how:tt)*]) => {
        $crate::least_privilege_conformance_tests!(@expand [$($how)*]
            publish_then_subscribe_keeps_payload_and_headers,
            every_consumer_group_gets_every_event,
            a_new_group_receives_earlier_events,
            nack_redelivers_and_loses_nothing,
            a_closed_group_resumes_where_it_left_off,
            exhausted_retries_go_to_the_dead_letter_topic,
            bad_input_is_dead_lettered_at_once,
            idempotency_key_duplicates_are_handled_once,
        );
    };
    (@expand [@each $target:expr] $($case:ident),* $(,)?) => {
        event_bus_core::conformance_tests!(@cases $target; $($case),*);
    };
    (@expand [@one $name:ident, $target:expr] $($case:ident),* $(,)?) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let target = $target;
            $(
                eprintln!("conformance case {}", stringify!($case));
                event_bus_core::conformance::$case(&target).await;
            )*
        }
    };
}
