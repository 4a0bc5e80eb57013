//! The Redis Streams broker: publishing with `XADD`, and opening group subscriptions.

use std::time::Duration;

use async_trait::async_trait;
use event_bus_core::kit::ClosedFlag;
use event_bus_core::redact::redacted_url;
use event_bus_core::{
    Broker, BusError, Capabilities, Message, Publisher, Subscriber, Subscription,
    SubscriptionConfig, TopologyItem, TopologyMode,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::client::{RedisTls, client};
use super::subscription::RedisSubscription;
use super::{entry, redis_error};

/// How the Redis Streams backend connects and behaves.
#[derive(Clone)]
pub struct RedisOptions {
    /// Server URL, such as `redis://127.0.0.1:6379`.
    pub url: String,
    /// Unacknowledged entries idle this long are taken over by another member.
    pub ack_deadline: Duration,
    /// Trim each stream to about this many entries.
    pub stream_max_len: Option<usize>,
    /// TLS files, for a `rediss://` URL.
    pub tls: RedisTls,
    /// Whether subscribing creates a missing consumer group (`EVENT_BUS_TOPOLOGY`).
    pub topology: TopologyMode,
}

impl std::fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOptions")
            .field("url", &redacted_url(&self.url))
            .field("ack_deadline", &self.ack_deadline)
            .field("stream_max_len", &self.stream_max_len)
            .field("tls", &self.tls)
            .field("topology", &self.topology)
            .finish()
    }
}

/// Publishes to and consumes from Redis Streams.
pub struct RedisBroker {
    client: redis::Client,
    publisher: ConnectionManager,
    options: RedisOptions,
    closed: ClosedFlag,
}

impl RedisBroker {
    /// What the backend guarantees; a test that can restart its server says so itself.
    pub const CAPABILITIES: Capabilities = Capabilities {
        consumer_groups: true,
        per_key_ordering: false,
        persistent: true,
        new_subscriber_receives_old_messages: true,
        can_restart_server: false,
    };

    /// Connects to the server; the connection reconnects by itself after a failure.
    pub async fn connect(options: RedisOptions) -> Result<Self, BusError> {
        let client = client(&options.url, &options.tls)?;
        let publisher = connection(&client).await?;
        Ok(Self {
            client,
            publisher,
            options,
            closed: ClosedFlag::default(),
        })
    }

    fn xadd(&self, topic: &str, message: &Message) -> redis::Cmd {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(topic);
        if let Some(max_len) = self.options.stream_max_len {
            cmd.arg("MAXLEN").arg("~").arg(max_len);
        }
        cmd.arg("*");
        entry::write_fields(&mut cmd, message);
        cmd
    }
}

/// A connection that reconnects after failures, with a response timeout longer than the
/// blocking reads subscriptions make.
pub(super) async fn connection(client: &redis::Client) -> Result<ConnectionManager, BusError> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(5)))
        .set_number_of_retries(3);
    ConnectionManager::new_with_config(client.clone(), config)
        .await
        .map_err(redis_error)
}

#[async_trait]
impl Publisher for RedisBroker {
    async fn publish(&self, topic: &str, message: Message) -> Result<(), BusError> {
        self.closed.ensure_open("publisher")?;
        let mut conn = self.publisher.clone();
        self.xadd(topic, &message)
            .query_async::<String>(&mut conn)
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    async fn publish_batch(
        &self,
        topic: &str,
        messages: Vec<Message>,
    ) -> Vec<Result<(), BusError>> {
        if let Some(refused) = self.closed.refuse_batch("publisher", messages.len()) {
            return refused;
        }
        let mut pipe = redis::pipe();
        for message in &messages {
            pipe.add_command(self.xadd(topic, message));
        }
        let mut conn = self.publisher.clone();
        match pipe.query_async::<Vec<String>>(&mut conn).await {
            Ok(_) => messages.iter().map(|_| Ok(())).collect(),
            Err(error) => messages
                .iter()
                .map(|_| Err(redis_error(error.clone())))
                .collect(),
        }
    }

    async fn close(&self) -> Result<(), BusError> {
        self.closed.close();
        Ok(())
    }
}

#[async_trait]
impl Subscriber for RedisBroker {
    async fn subscribe(
        &self,
        config: &SubscriptionConfig,
    ) -> Result<Box<dyn Subscription>, BusError> {
        self.options
            .topology
            .check_instance_scoped(self.name(), config)?;
        let conn = connection(&self.client).await?;
        let opened = RedisSubscription::open(
            conn,
            self.publisher.clone(),
            config,
            self.options.ack_deadline,
            self.options.topology,
        )
        .await?;
        Ok(Box::new(opened))
    }
}

impl Broker for RedisBroker {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn capabilities(&self) -> Capabilities {
        Self::CAPABILITIES
    }

    fn topology(&self, config: &SubscriptionConfig) -> Vec<TopologyItem> {
        vec![
            TopologyItem::new("stream", &config.topic),
            TopologyItem::new("consumer group", &config.consumer_group)
                .of(TopologyItem::new("stream", &config.topic)),
        ]
    }
}
