//! The Pub/Sub broker: options, the client, publishing and opening group subscriptions.

use std::time::Duration;

use async_trait::async_trait;
use event_bus_core::kit::ClosedFlag;
use event_bus_core::{
    Broker, BusError, BusSettings, Capabilities, ConfigError, Message, Publisher, Subscriber,
    Subscription, SubscriptionConfig, TopologyItem, TopologyMode,
};
use gcloud_gax::conn::{ConnectionOptions, Environment};
use gcloud_gax::grpc::Code;
use gcloud_gax::retry::RetrySetting;
use gcloud_pubsub::apiv1::conn_pool::PUBSUB;
use gcloud_pubsub::client::{Client, ClientConfig};
use token_source::NoopTokenSourceProvider;

use super::PubSubError;
use super::admin::{Admin, admin_call, subscription_id};
use super::sender::Sender;
use super::subscription::PubSubSubscription;

/// Longest wait for the server to answer when connecting.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The topic whose existence connecting asks about, to see that the server is Pub/Sub.
const PROBE_TOPIC: &str = "eventbus-connect-probe";
/// The project id `GCP_PROJECT_ID` defaults to; on GCP the credentials' project is used instead.
const DEFAULT_PROJECT: &str = "local-project";

/// The variables the Pub/Sub backend reads.
pub const VARIABLES: &[&str] = &[
    "GCP_PROJECT_ID",
    "PUBSUB_EMULATOR_HOST",
    "PUBSUB_ENABLE_DLQ",
];

#[derive(serde::Deserialize)]
struct Variables {
    gcp_project_id: Option<String>,
    pubsub_emulator_host: Option<String>,
    pubsub_enable_dlq: Option<bool>,
}

/// How the Pub/Sub backend connects and publishes.
#[derive(Clone, Debug)]
pub struct PubSubOptions {
    /// The GCP project of every topic and subscription.
    pub project_id: String,
    /// `host:port` of the emulator; `None` is real GCP with application default credentials.
    pub emulator_host: Option<String>,
    /// Publish with the message key (the aggregate id) as the ordering key.
    pub ordering_keys: bool,
    /// Put concurrent publishes to a topic into one request.
    pub batching: bool,
    /// Ack deadline of subscriptions (10 to 600 seconds); deliveries in flight are kept leased.
    pub ack_deadline: Duration,
    /// Longest wait for the server when connecting.
    pub connect_timeout: Duration,
    /// Give subscriptions Pub/Sub's own dead-letter policy, a safety net for messages no
    /// handler ever settles (`PUBSUB_ENABLE_DLQ`, default true); the bus dead-letters either way.
    pub native_dead_letter: bool,
    /// The dead-letter topic and the subscription that keeps its messages, made when
    /// connecting so no dead letter is ever published to a topic nobody keeps.
    pub dead_letters: Option<(String, String)>,
    /// `EVENT_BUS_TOPOLOGY`: under `existing` the backend makes no administrative request
    /// (it publishes to topics and pulls from subscriptions that exist).
    pub topology: TopologyMode,
}

impl PubSubOptions {
    /// Options from `GCP_PROJECT_ID`, `PUBSUB_EMULATOR_HOST`, `PUBSUB_ENABLE_DLQ`,
    /// `EVENT_BUS_ENABLE_ORDERING`, `EVENT_BUS_ENABLE_BATCHING` and
    /// `EVENT_BUS_ACK_DEADLINE_SECONDS`.
    pub fn from_settings(settings: &BusSettings) -> Result<Self, ConfigError> {
        let vars: Variables = settings.source.read()?;
        Ok(Self {
            project_id: vars
                .gcp_project_id
                .unwrap_or_else(|| DEFAULT_PROJECT.to_owned()),
            emulator_host: vars.pubsub_emulator_host.filter(|host| !host.is_empty()),
            ordering_keys: settings.enable_ordering,
            batching: settings.enable_batching,
            ack_deadline: settings.ack_deadline,
            connect_timeout: CONNECT_TIMEOUT,
            native_dead_letter: vars.pubsub_enable_dlq.unwrap_or(true),
            dead_letters: Some((
                settings.dead_letter_topic.clone(),
                settings.dead_letter_subscription.clone(),
            )),
            topology: settings.topology,
        })
    }

    fn ack_deadline_seconds(&self) -> i32 {
        i32::try_from(self.ack_deadline.as_secs().clamp(10, 600)).unwrap_or(600)
    }
}

/// Publishes to and consumes from Google Cloud Pub/Sub.
pub struct PubSubBroker {
    admin: Admin,
    sender: Sender,
    options: PubSubOptions,
    closed: ClosedFlag,
}

impl PubSubBroker {
    /// Connects to the emulator or to GCP; an unreachable server fails within the connect
    /// timeout with [`PubSubError::Unreachable`].
    pub async fn connect(options: PubSubOptions) -> Result<Self, BusError> {
        let client = client(&options).await?;
        let admin = Admin {
            client,
            topology: options.topology,
        };
        if let Some((topic, keeper)) = options
            .dead_letters
            .as_ref()
            .filter(|_| options.topology.creates())
        {
            // A publisher-only identity may not create it; subscribing tries again.
            if let Err(error) = admin
                .keep_dead_letters(topic, keeper, options.ack_deadline_seconds())
                .await
            {
                tracing::warn!(%error, topic, "pubsub: the dead-letter topic's keeping subscription could not be made now");
            }
        }
        Ok(Self {
            sender: Sender::new(admin.clone(), options.ordering_keys, options.batching),
            admin,
            options,
            closed: ClosedFlag::default(),
        })
    }

    /// The underlying `gcloud-pubsub` client, for administration.
    pub fn client(&self) -> &Client {
        &self.admin.client
    }
}

async fn client(options: &PubSubOptions) -> Result<Client, BusError> {
    let emulated = options.emulator_host.is_some();
    let endpoint = options
        .emulator_host
        .clone()
        .unwrap_or_else(|| PUBSUB.to_owned());
    let unreachable = |cause: String| {
        BusError::backend(
            "pubsub",
            PubSubError::Unreachable {
                endpoint: endpoint.clone(),
                timeout: options.connect_timeout,
                cause,
            },
        )
    };
    let mut config = ClientConfig {
        pool_size: 2,
        project_id: (emulated || options.project_id != DEFAULT_PROJECT)
            .then(|| options.project_id.clone()),
        environment: match &options.emulator_host {
            Some(host) => Environment::Emulator(host.clone()),
            None => Environment::GoogleCloud(Box::new(NoopTokenSourceProvider {})),
        },
        endpoint: PUBSUB.to_owned(),
        connection_option: ConnectionOptions {
            connect_timeout: Some(options.connect_timeout),
            ..ConnectionOptions::default()
        },
    };
    if !emulated {
        config = config
            .with_auth()
            .await
            .map_err(|error| BusError::backend("pubsub", PubSubError::Setup(error.to_string())))?;
    }
    let started = tokio::time::Instant::now();
    let client = match tokio::time::timeout(options.connect_timeout, Client::new(config)).await {
        Ok(Ok(client)) => client,
        Ok(Err(error)) => return Err(unreachable(error.to_string())),
        Err(_) => return Err(unreachable("timed out".to_owned())),
    };
    // The channel connects lazily: one request proves the endpoint answers as Pub/Sub. Under
    // `existing` topology it is a pull from a subscription that does not exist, as no
    // administrative request may be made.
    let probe = async {
        if options.topology.creates() {
            admin_call("GetTopic", PROBE_TOPIC);
            client
                .topic(PROBE_TOPIC)
                .exists(Some(no_retries()))
                .await
                .map(drop)
        } else {
            client
                .subscription(PROBE_TOPIC)
                .pull(1, Some(no_retries()))
                .await
                .map(drop)
        }
    };
    match tokio::time::timeout_at(started + options.connect_timeout, probe).await {
        Ok(Ok(())) => Ok(client),
        Ok(Err(status)) if matches!(status.code(), Code::PermissionDenied | Code::NotFound) => {
            Ok(client)
        }
        Ok(Err(status)) => Err(unreachable(format!(
            "it does not answer as Pub/Sub: {}: {}",
            status.code().description(),
            status.message()
        ))),
        Err(_) => Err(unreachable("timed out".to_owned())),
    }
}

/// A request that fails is not tried again: connecting reports the first answer.
fn no_retries() -> RetrySetting {
    RetrySetting {
        take: 0,
        codes: Vec::new(),
        ..RetrySetting::default()
    }
}

#[async_trait]
impl Publisher for PubSubBroker {
    async fn publish(&self, topic: &str, message: Message) -> Result<(), BusError> {
        self.closed.ensure_open("publisher")?;
        self.sender.publish(topic, &message).await
    }

    async fn publish_batch(
        &self,
        topic: &str,
        messages: Vec<Message>,
    ) -> Vec<Result<(), BusError>> {
        if let Some(refused) = self.closed.refuse_batch("publisher", messages.len()) {
            return refused;
        }
        self.sender.publish_batch(topic, &messages).await
    }

    /// Waits until every publish queued for a batch has its answer, then refuses more.
    async fn close(&self) -> Result<(), BusError> {
        self.closed.close();
        self.sender.close().await;
        Ok(())
    }
}

#[async_trait]
impl Subscriber for PubSubBroker {
    async fn subscribe(
        &self,
        config: &SubscriptionConfig,
    ) -> Result<Box<dyn Subscription>, BusError> {
        let wanted = self.admin.wanted(
            config,
            self.options.ack_deadline_seconds(),
            self.options.native_dead_letter,
        );
        self.options
            .topology
            .check_instance_scoped(self.name(), config)?;
        let subscription = self.admin.subscription(config, &wanted).await?;
        let opened = PubSubSubscription::open(self.admin.clone(), subscription, config, wanted);
        if self.options.topology.creates() {
            return Ok(Box::new(opened));
        }
        Ok(Box::new(opened.found().await?))
    }

    /// Creates the topic, the subscription and the dead-letter wiring without pulling, so no
    /// message is taken and handed back (which would count as a delivery attempt).
    async fn provision(&self, config: &SubscriptionConfig) -> Result<(), BusError> {
        let wanted = self.admin.wanted(
            config,
            self.options.ack_deadline_seconds(),
            self.options.native_dead_letter,
        );
        self.admin
            .ensure_subscription(config, &wanted)
            .await
            .map(drop)
    }
}

impl Broker for PubSubBroker {
    fn name(&self) -> &'static str {
        "pubsub"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            consumer_groups: true,
            per_key_ordering: self.options.ordering_keys,
            persistent: self.options.emulator_host.is_none(),
            new_subscriber_receives_old_messages: false,
            can_restart_server: false,
        }
    }

    fn topology(&self, config: &SubscriptionConfig) -> Vec<TopologyItem> {
        let mut items = vec![
            TopologyItem::new("topic", &config.topic),
            TopologyItem::new(
                "subscription",
                subscription_id(&config.consumer_group, &config.topic, false),
            ),
        ];
        if let Some(topic) = &config.dead_letter_topic
            && topic != &config.topic
        {
            items.push(TopologyItem::new("topic", topic));
            items.push(TopologyItem::new(
                "subscription",
                subscription_id(&config.dead_letter_subscription, topic, false),
            ));
        }
        items
    }
}
