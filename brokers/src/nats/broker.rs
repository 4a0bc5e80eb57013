//! The NATS broker: connecting, publishing, and opening group subscriptions.

use std::sync::Arc;

use async_nats::jetstream;
use async_trait::async_trait;
use event_bus_core::{
    Broker, BusError, Capabilities, Message, Publisher, Subscriber, Subscription,
    SubscriptionConfig, TopologyItem, TopologyMode,
};

use super::options::NatsOptions;
use super::publisher::NatsPublisher;
use super::streams::Streams;
use super::subscription::NatsSubscription;
use super::violations::Violations;
use super::{NAME, NatsError, names};

/// Publishes to and consumes from NATS JetStream.
pub struct NatsBroker {
    client: async_nats::Client,
    streams: Arc<Streams>,
    publisher: NatsPublisher,
    topology: TopologyMode,
}

impl NatsBroker {
    /// What the backend guarantees; a test that can restart its server says so itself.
    pub const CAPABILITIES: Capabilities = Capabilities {
        consumer_groups: true,
        per_key_ordering: true,
        persistent: true,
        new_subscriber_receives_old_messages: true,
        can_restart_server: false,
    };

    /// Connects, and checks that the server has JetStream; fails within the connect timeout
    /// when no server answers. A lost connection is re-established by the client.
    pub async fn connect(options: NatsOptions) -> Result<Self, BusError> {
        let violations = Violations::default();
        let client = connect(&options, violations.clone()).await?;
        let jetstream = jetstream::ContextBuilder::new()
            .timeout(options.request_timeout)
            .build(client.clone());
        check_jetstream(&client, &options.url).await?;
        let max_payload = client.server_info().max_payload;
        if max_payload < options.max_message_bytes.saturating_add(HEADER_ROOM) {
            tracing::warn!(
                max_payload,
                max_message_bytes = options.max_message_bytes,
                "nats: the server's max_payload is not above EVENT_BUS_MAX_MESSAGE_BYTES; the largest events will be refused"
            );
        }
        let streams = Arc::new(Streams::new(jetstream.clone(), &options, violations));
        let publisher = NatsPublisher::new(client.clone(), jetstream, Arc::clone(&streams));
        Ok(Self {
            client,
            streams,
            publisher,
            topology: options.topology,
        })
    }
}

/// Room for headers beyond a message's counted size in the server's payload limit.
const HEADER_ROOM: usize = 4096;

async fn connect(
    options: &NatsOptions,
    violations: Violations,
) -> Result<async_nats::Client, NatsError> {
    crate::crypto_provider::ensure_installed();
    let mut connect = async_nats::ConnectOptions::new().event_callback(move |event| {
        let violations = violations.clone();
        async move {
            if let async_nats::Event::ServerError(error) = &event {
                violations.record(error);
            }
            tracing::debug!(%event, "nats: connection event");
        }
    });
    if let Some(ca) = &options.tls_ca_file {
        connect = connect.add_root_certificates(ca.clone()).require_tls(true);
    }
    let connecting = with_url_credentials(connect, options)
        .name("event-bus")
        .connection_timeout(options.connect_timeout)
        .request_timeout(Some(options.request_timeout))
        .connect(without_credentials(&options.servers()));
    match tokio::time::timeout(options.connect_timeout, connecting).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(source)) if source.kind() == async_nats::ConnectErrorKind::TimedOut => {
            Err(NatsError::Unreachable {
                url: event_bus_core::redact::redacted_url(&options.url),
                timeout: options.connect_timeout,
            })
        }
        Ok(Err(source)) => Err(NatsError::Connect {
            url: event_bus_core::redact::redacted_url(&options.url),
            source,
        }),
        Err(_) => Err(NatsError::Unreachable {
            url: event_bus_core::redact::redacted_url(&options.url),
            timeout: options.connect_timeout,
        }),
    }
}

/// The client does not log in with credentials in a server URL by itself: those of the first
/// URL (`user:password@`, or a lone token `token@`) become its login.
fn with_url_credentials(
    connect: async_nats::ConnectOptions,
    options: &NatsOptions,
) -> async_nats::ConnectOptions {
    let first = options
        .servers()
        .first()
        .and_then(|url| url.parse::<async_nats::ServerAddr>().ok());
    match first
        .as_ref()
        .map(|addr| (addr.username(), addr.password()))
    {
        Some((Some(user), Some(password))) => {
            connect.user_and_password(decoded(user), decoded(password))
        }
        Some((Some(token), None)) => connect.token(decoded(token)),
        _ => connect,
    }
}

/// The server URLs without their credentials (the login carries them), so the client's own
/// logs of the servers it tries show none.
fn without_credentials(servers: &[&str]) -> Vec<async_nats::ServerAddr> {
    servers
        .iter()
        .filter_map(|url| url.parse::<async_nats::ServerAddr>().ok())
        .filter_map(|addr| {
            let mut url = addr.into_inner();
            let _ = url.set_username("");
            let _ = url.set_password(None);
            async_nats::ServerAddr::from_url(url).ok()
        })
        .collect()
}

/// A URL part without its percent-encoding.
fn decoded(part: &str) -> String {
    percent_encoding::percent_decode_str(part)
        .decode_utf8_lossy()
        .into_owned()
}

/// Asks JetStream for the account's information, which only a server with JetStream answers.
async fn check_jetstream(client: &async_nats::Client, url: &str) -> Result<(), NatsError> {
    let answer = client
        .request("$JS.API.INFO", bytes::Bytes::new())
        .await
        .map_err(|source| NatsError::NoJetStream {
            url: event_bus_core::redact::redacted_url(url),
            source,
        })?;
    let answer: serde_json::Value = serde_json::from_slice(&answer.payload).unwrap_or_default();
    match answer.get("error") {
        None => Ok(()),
        Some(error) => Err(NatsError::JetStreamRefused {
            url: event_bus_core::redact::redacted_url(url),
            description: error["description"]
                .as_str()
                .unwrap_or("no description")
                .to_owned(),
        }),
    }
}

#[async_trait]
impl Publisher for NatsBroker {
    async fn publish(&self, topic: &str, message: Message) -> Result<(), BusError> {
        self.publisher.publish(topic, &message).await
    }

    async fn publish_batch(
        &self,
        topic: &str,
        messages: Vec<Message>,
    ) -> Vec<Result<(), BusError>> {
        self.publisher.publish_batch(topic, &messages).await
    }

    async fn close(&self) -> Result<(), BusError> {
        self.publisher.close().await
    }
}

#[async_trait]
impl Subscriber for NatsBroker {
    async fn subscribe(
        &self,
        config: &SubscriptionConfig,
    ) -> Result<Box<dyn Subscription>, BusError> {
        self.topology.check_instance_scoped(NAME, config)?;
        let subscription =
            NatsSubscription::open(self.client.clone(), Arc::clone(&self.streams), config).await?;
        Ok(Box::new(subscription))
    }
}

impl Broker for NatsBroker {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        Self::CAPABILITIES
    }

    fn topology(&self, config: &SubscriptionConfig) -> Vec<TopologyItem> {
        let stream = names::stream(&config.topic);
        let mut items = vec![
            TopologyItem::new("stream", &stream),
            TopologyItem::new("durable consumer", names::consumer(&config.consumer_group))
                .of(TopologyItem::new("stream", &stream)),
        ];
        if let Some(topic) = &config.dead_letter_topic {
            items.push(TopologyItem::new("stream", names::stream(topic)));
        }
        items
    }
}
