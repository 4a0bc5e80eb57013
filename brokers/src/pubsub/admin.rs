//! Topics and subscriptions: created when first needed, checked when they exist.

use event_bus_core::{BusError, SubscriptionConfig, TopologyItem, TopologyMode};
use gcloud_gax::grpc::{Code, Status};
use gcloud_googleapis::pubsub::v1::{
    DeadLetterPolicy, ExpirationPolicy, Subscription as SubscriptionResource,
    UpdateSubscriptionRequest,
};
use gcloud_pubsub::client::Client;
use gcloud_pubsub::subscription::{Subscription, SubscriptionConfig as PubSubConfig};

use super::{PubSubError, request_error};

/// Fewest and most delivery attempts Pub/Sub's dead-letter policy allows.
const NATIVE_ATTEMPTS: (i32, i32) = (5, 100);

/// How long an instance-scoped subscription outlives its owner: Pub/Sub's shortest expiry.
const INSTANCE_SCOPED_EXPIRY: prost_types::Duration = prost_types::Duration {
    seconds: 24 * 60 * 60,
    nanos: 0,
};

/// Where each administrative request (creating, reading, changing or deleting topics and
/// subscriptions) is logged at debug level, so an operator sees which ones the bus makes.
pub const ADMIN_LOG_TARGET: &str = "event_bus_brokers::pubsub::admin";

/// Logs an administrative request before it is made.
pub(super) fn admin_call(call: &'static str, resource: &str) {
    tracing::debug!(target: ADMIN_LOG_TARGET, call, resource, "pubsub: administrative request");
}

/// Creates and inspects topics and subscriptions of one project; under
/// [`TopologyMode::Existing`] it makes no administrative request.
#[derive(Clone)]
pub(super) struct Admin {
    pub(super) client: Client,
    pub(super) topology: TopologyMode,
}

/// What a subscription is created with, besides its topic.
#[derive(Clone)]
pub(super) struct Wanted {
    pub(super) ordering: bool,
    pub(super) filter: String,
    pub(super) dead_letter: Option<DeadLetterPolicy>,
    pub(super) ack_deadline_seconds: i32,
    /// An instance's own group: it expires after a day unused (Pub/Sub's shortest expiry)
    /// and is deleted when its member closes.
    pub(super) instance_scoped: bool,
}

impl Admin {
    /// Creates the topic unless it exists; under [`TopologyMode::Existing`], the topic is
    /// missing (it was not found).
    pub(super) async fn create_topic(&self, topic: &str) -> Result<(), BusError> {
        if !self.topology.creates() {
            return Err(BusError::missing(
                "pubsub",
                TopologyItem::new("topic", topic),
            ));
        }
        admin_call("CreateTopic", topic);
        match self.client.create_topic(topic, None, None).await {
            Ok(_) => Ok(()),
            Err(status) if status.code() == Code::AlreadyExists => Ok(()),
            Err(status) => Err(request_error("create topic", topic, status)),
        }
    }

    /// What `config` asks of its subscription; `native_dead_letter` adds Pub/Sub's own
    /// dead-letter policy.
    pub(super) fn wanted(
        &self,
        config: &SubscriptionConfig,
        ack_deadline_seconds: i32,
        native_dead_letter: bool,
    ) -> Wanted {
        Wanted {
            ordering: config.ordering,
            filter: config
                .tenant
                .as_deref()
                .map(tenant_filter)
                .unwrap_or_default(),
            dead_letter: config
                .dead_letter_topic
                .as_ref()
                .filter(|_| native_dead_letter)
                .map(|topic| DeadLetterPolicy {
                    dead_letter_topic: self.client.fully_qualified_topic_name(topic),
                    max_delivery_attempts: dead_letter_attempts(config.max_delivery_attempts),
                }),
            ack_deadline_seconds,
            instance_scoped: config.ephemeral,
        }
    }

    /// The subscription of `config`'s consumer group: under [`TopologyMode::Existing`] the one
    /// named as the group, unchecked (its first pull finds it missing); otherwise as
    /// [`ensure_subscription`](Self::ensure_subscription) makes it.
    pub(super) async fn subscription(
        &self,
        config: &SubscriptionConfig,
        wanted: &Wanted,
    ) -> Result<Subscription, BusError> {
        if self.topology.creates() {
            return self.ensure_subscription(config, wanted).await;
        }
        let id = subscription_id(&config.consumer_group, &config.topic, false);
        Ok(self.client.subscription(&id))
    }

    /// The subscription of `config`'s consumer group, created (with its topic and dead-letter
    /// topic) when missing; an existing one must have the same filter and ordering, and gets
    /// the wanted dead-letter policy.
    pub(super) async fn ensure_subscription(
        &self,
        config: &SubscriptionConfig,
        wanted: &Wanted,
    ) -> Result<Subscription, BusError> {
        self.create_topic(&config.topic).await?;
        if let Some(topic) = &config.dead_letter_topic {
            self.create_topic(topic).await?;
            self.ensure_dead_letter_subscription(topic, config, wanted)
                .await?;
        }
        let topic_path = self.client.fully_qualified_topic_name(&config.topic);
        let (group, topic) = (&config.consumer_group, &config.topic);
        for id in [
            subscription_id(group, topic, false),
            subscription_id(group, topic, true),
        ] {
            let subscription = self.client.subscription(&id);
            let existing = match self.read(&subscription).await? {
                Some(existing) => existing,
                None => match self.create(&subscription, &topic_path, wanted).await? {
                    Some(()) => return Ok(subscription),
                    None => self.read(&subscription).await?.ok_or_else(|| {
                        request_error("get subscription", &id, Status::not_found("vanished"))
                    })?,
                },
            };
            if existing.topic != topic_path {
                tracing::warn!(subscription = %id, topic = %existing.topic, "pubsub: the group's name is taken by a subscription of another topic, so it gets `{{group}}.{{topic}}`, which EVENT_BUS_TOPOLOGY=existing cannot find: give the group a name unique in the project");
                continue;
            }
            self.check(&id, &existing, wanted)?;
            if existing.dead_letter_policy != wanted.dead_letter {
                self.set_dead_letter_policy(&subscription, &existing, wanted)
                    .await?;
            }
            return Ok(subscription);
        }
        Err(request_error(
            "create subscription",
            &config.consumer_group,
            Status::already_exists("the group's names are taken by subscriptions of other topics"),
        ))
    }

    /// The subscription that keeps dead letters until `eventbus dlq` reads them: Pub/Sub
    /// keeps a message only for subscriptions that exist when it is published.
    async fn ensure_dead_letter_subscription(
        &self,
        topic: &str,
        config: &SubscriptionConfig,
        wanted: &Wanted,
    ) -> Result<(), BusError> {
        if config.topic == topic {
            return Ok(());
        }
        Box::pin(self.keep_dead_letters(
            topic,
            &config.dead_letter_subscription,
            wanted.ack_deadline_seconds,
        ))
        .await
    }

    /// Creates the dead-letter topic and the subscription `keeper` on it, unless they exist.
    pub(super) async fn keep_dead_letters(
        &self,
        topic: &str,
        keeper: &str,
        ack_deadline_seconds: i32,
    ) -> Result<(), BusError> {
        let plain = Wanted {
            ordering: false,
            filter: String::new(),
            dead_letter: None,
            ack_deadline_seconds,
            instance_scoped: false,
        };
        self.ensure_subscription(&SubscriptionConfig::new(topic, keeper), &plain)
            .await
            .map(drop)
    }

    /// The topic (short name) a subscription (full name) reads, if it exists; `None` under
    /// [`TopologyMode::Existing`], which reads no subscription.
    pub(super) async fn topic_of(&self, subscription: &str) -> Option<String> {
        if !self.topology.creates() {
            return None;
        }
        let id = subscription.rsplit('/').next().unwrap_or(subscription);
        admin_call("GetSubscription", id);
        let (topic, _) = self.client.subscription(id).config(None).await.ok()?;
        Some(topic.rsplit('/').next().unwrap_or(&topic).to_owned())
    }

    async fn read(&self, subscription: &Subscription) -> Result<Option<Current>, BusError> {
        admin_call("GetSubscription", &subscription.id());
        match subscription.config(None).await {
            Ok((topic, config)) => Ok(Some(Current {
                topic,
                filter: config.filter,
                ordering: config.enable_message_ordering,
                dead_letter_policy: config.dead_letter_policy,
            })),
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(request_error(
                "get subscription",
                &subscription.id(),
                status,
            )),
        }
    }

    /// `Some` when created, `None` when someone else created it first.
    async fn create(
        &self,
        subscription: &Subscription,
        topic_path: &str,
        wanted: &Wanted,
    ) -> Result<Option<()>, BusError> {
        let config = PubSubConfig {
            ack_deadline_seconds: wanted.ack_deadline_seconds,
            enable_message_ordering: wanted.ordering,
            filter: wanted.filter.clone(),
            dead_letter_policy: wanted.dead_letter.clone(),
            // A durable group never expires for lack of activity (GCP's default is 31 days),
            // since its messages would be lost with it; an instance's own expires once its
            // owner is gone.
            expiration_policy: Some(ExpirationPolicy {
                ttl: wanted.instance_scoped.then_some(INSTANCE_SCOPED_EXPIRY),
            }),
            ..PubSubConfig::default()
        };
        admin_call("CreateSubscription", &subscription.id());
        match subscription.create(topic_path, config, None).await {
            Ok(()) => Ok(Some(())),
            Err(status) if status.code() == Code::AlreadyExists => Ok(None),
            Err(status) => Err(request_error(
                "create subscription",
                &subscription.id(),
                status,
            )),
        }
    }

    fn check(&self, id: &str, existing: &Current, wanted: &Wanted) -> Result<(), BusError> {
        if existing.filter != wanted.filter {
            return Err(BusError::backend(
                "pubsub",
                PubSubError::FilterMismatch {
                    subscription: id.to_owned(),
                    existing: existing.filter.clone(),
                    wanted: wanted.filter.clone(),
                },
            ));
        }
        if existing.ordering != wanted.ordering {
            return Err(BusError::backend(
                "pubsub",
                PubSubError::OrderingMismatch {
                    subscription: id.to_owned(),
                    existing: existing.ordering,
                    wanted: wanted.ordering,
                },
            ));
        }
        Ok(())
    }

    async fn set_dead_letter_policy(
        &self,
        subscription: &Subscription,
        existing: &Current,
        wanted: &Wanted,
    ) -> Result<(), BusError> {
        let request = UpdateSubscriptionRequest {
            subscription: Some(SubscriptionResource {
                name: subscription.fully_qualified_name().to_owned(),
                topic: existing.topic.clone(),
                dead_letter_policy: wanted.dead_letter.clone(),
                ..SubscriptionResource::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["dead_letter_policy".to_owned()],
            }),
        };
        admin_call("UpdateSubscription", &subscription.id());
        subscription
            .get_client()
            .update_subscription(request, None)
            .await
            .map(drop)
            .map_err(|status| request_error("update subscription", &subscription.id(), status))
    }
}

struct Current {
    topic: String,
    filter: String,
    ordering: bool,
    dead_letter_policy: Option<DeadLetterPolicy>,
}

/// The subscription filter that keeps only `tenant`'s messages: `attributes.tenant_id = "…"`.
pub fn tenant_filter(tenant: &str) -> String {
    let escaped = tenant.replace('\\', "\\\\").replace('"', "\\\"");
    format!("attributes.tenant_id = \"{escaped}\"")
}

/// Delivery attempts of Pub/Sub's dead-letter policy for a bus that dead-letters after
/// `bus_attempts`: two more, so the bus (with its reason headers) always goes first, within
/// the 5 to 100 Pub/Sub allows.
pub fn dead_letter_attempts(bus_attempts: u32) -> i32 {
    i32::try_from(bus_attempts.saturating_add(2))
        .unwrap_or(i32::MAX)
        .clamp(NATIVE_ATTEMPTS.0, NATIVE_ATTEMPTS.1)
}

/// The subscription id of a consumer group on a topic, when the group's own name is free or
/// already its subscription on that topic: the group name; otherwise `{group}.{topic}`.
pub fn subscription_id(group: &str, topic: &str, group_name_taken: bool) -> String {
    if group_name_taken {
        format!("{group}.{topic}")
    } else {
        group.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tenant_filter_quotes_the_tenant() {
        assert_eq!(tenant_filter("acme"), r#"attributes.tenant_id = "acme""#);
        assert_eq!(tenant_filter(r#"a"b"#), r#"attributes.tenant_id = "a\"b""#);
    }

    #[test]
    fn native_dead_lettering_comes_after_the_bus() {
        assert_eq!(dead_letter_attempts(1), 5);
        assert_eq!(dead_letter_attempts(5), 7);
        assert_eq!(dead_letter_attempts(500), 100);
    }
}
