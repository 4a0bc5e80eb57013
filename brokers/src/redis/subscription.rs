//! One member of a stream consumer group: due retries first, then entries abandoned by other
//! members, then new entries.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use event_bus_core::kit::{Delivered, Leases};
use event_bus_core::{
    BusError, Delivery, Message, Subscription, SubscriptionConfig, TopologyItem, TopologyMode,
};
use redis::aio::ConnectionManager;
use redis::streams::{
    StreamAutoClaimReply, StreamClaimReply, StreamId, StreamInfoGroupsReply,
    StreamPendingCountReply, StreamReadReply,
};
use tokio::time::Instant;
use tokio_util::sync::DropGuard;

use super::delivery::{GroupEntry, RedisSettle};
use super::{entry, ephemeral, now_millis, redis_error};

/// Entries fetched per round trip.
const BATCH: usize = 16;
/// Longest a read blocks on the server before the subscription looks at retries again.
const BLOCK: Duration = Duration::from_millis(500);
/// An instance-scoped group whose owner stopped renewing it for this many ack deadlines (it
/// died) is removed.
const EPHEMERAL_DEADLINES: u32 = 3;
/// How often the group's delayed-retry set is asked for due entries while new entries keep
/// coming (an idle member asks after every blocked read).
const RETRY_CHECK_EVERY: Duration = Duration::from_millis(10);
/// How often, at most, the member looks for entries other members abandoned (idle for an ack
/// deadline, so a little later makes no difference).
const ABANDONED_CHECK_EVERY: Duration = Duration::from_secs(1);

/// An entry fetched and not handed out yet.
struct Fetched {
    id: String,
    attempt: u32,
    message: Message,
    /// Delivered to the group before (a due retry or an entry taken over).
    redelivered: bool,
}

/// Reads one consumer group of one stream as a uniquely named consumer.
pub(super) struct RedisSubscription {
    /// Reads, blocking on the server.
    conn: ConnectionManager,
    /// Settles deliveries; never blocks.
    settling: ConnectionManager,
    group: Arc<GroupEntry>,
    ack_deadline: Duration,
    autoclaim_cursor: String,
    /// When to ask for due retries, and for abandoned entries, next.
    next_retry_check: Instant,
    next_abandoned_check: Instant,
    buffer: VecDeque<Fetched>,
    /// Entries fetched and not settled, kept from going idle so no other member claims them.
    leases: Arc<Leases<String>>,
    /// Destroy the group (and its retry set) on close.
    ephemeral: bool,
    /// An instance-scoped group's registration, renewed until dropped.
    registration: Option<DropGuard>,
}

impl RedisSubscription {
    /// Creates the group (at id `0`) unless it exists, removes the stream's instance-scoped
    /// groups whose owners died, and registers this one if it is instance-scoped; under
    /// [`TopologyMode::Existing`] only checks that the group exists. The member reads with
    /// `conn`; its held entries and registration are renewed over `renewals` (a connection
    /// that never blocks).
    pub(super) async fn open(
        mut conn: ConnectionManager,
        mut renewals: ConnectionManager,
        config: &SubscriptionConfig,
        ack_deadline: Duration,
        topology: TopologyMode,
    ) -> Result<Self, BusError> {
        if topology.creates() {
            create_group(&mut conn, config).await?;
            ephemeral::sweep(&mut renewals, &config.topic).await?;
        } else {
            require_group(&mut conn, config).await?;
        }
        let mut subscription = Self::new(conn, renewals.clone(), config, ack_deadline);
        if config.ephemeral {
            let expiry = ack_deadline * EPHEMERAL_DEADLINES;
            let group = Arc::clone(&subscription.group);
            subscription.registration =
                Some(ephemeral::keep_registered(renewals, group, expiry).await?);
        }
        Ok(subscription)
    }

    fn new(
        conn: ConnectionManager,
        renewals: ConnectionManager,
        config: &SubscriptionConfig,
        ack_deadline: Duration,
    ) -> Self {
        let group = Arc::new(GroupEntry {
            stream: config.topic.clone(),
            group: config.consumer_group.clone(),
            consumer: format!("consumer-{}", uuid::Uuid::now_v7().simple()),
            delayed: format!("{}:delayed:{}", config.topic, config.consumer_group),
        });
        let leases = renewed_leases(renewals.clone(), Arc::clone(&group), ack_deadline / 3);
        let now = Instant::now();
        Self {
            conn,
            settling: renewals,
            next_retry_check: now,
            next_abandoned_check: now,
            group,
            leases,
            ack_deadline,
            autoclaim_cursor: "0-0".to_owned(),
            buffer: VecDeque::new(),
            ephemeral: config.ephemeral,
            registration: None,
        }
    }

    async fn fill(&mut self) -> Result<(), BusError> {
        let now = Instant::now();
        if now >= self.next_retry_check {
            let full = self.take_due_retries().await?;
            // A full batch means more may be due.
            if !full {
                self.next_retry_check = now + RETRY_CHECK_EVERY;
            }
        }
        if self.buffer.is_empty() && now >= self.next_abandoned_check {
            self.take_abandoned().await?;
            // A scan that went round the whole group found nothing more for now.
            if self.autoclaim_cursor == "0-0" {
                self.next_abandoned_check = now + ABANDONED_CHECK_EVERY.min(self.ack_deadline);
            }
        }
        if self.buffer.is_empty() {
            self.read_new().await?;
            // After a read that waited, retries may have come due meanwhile.
            if self.buffer.is_empty() {
                self.next_retry_check = Instant::now();
            }
        }
        Ok(())
    }

    /// Takes the retries that are due; returns whether a full batch was due.
    async fn take_due_retries(&mut self) -> Result<bool, BusError> {
        let due: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(&self.group.delayed)
            .arg("-inf")
            .arg(now_millis())
            .arg("LIMIT")
            .arg(0)
            .arg(BATCH)
            .query_async(&mut self.conn)
            .await
            .map_err(redis_error)?;
        let full = due.len() >= BATCH;
        for id in due {
            let owned: i64 = redis::cmd("ZREM")
                .arg(&self.group.delayed)
                .arg(&id)
                .query_async(&mut self.conn)
                .await
                .map_err(redis_error)?;
            if owned == 0 {
                continue;
            }
            let claimed: StreamClaimReply = redis::cmd("XCLAIM")
                .arg(&self.group.stream)
                .arg(&self.group.group)
                .arg(&self.group.consumer)
                .arg(0)
                .arg(&id)
                .query_async(&mut self.conn)
                .await
                .map_err(redis_error)?;
            for entry in claimed.ids {
                self.push_redelivered(entry).await?;
            }
        }
        Ok(full)
    }

    async fn take_abandoned(&mut self) -> Result<(), BusError> {
        let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(&self.group.stream)
            .arg(&self.group.group)
            .arg(&self.group.consumer)
            .arg(self.ack_deadline.as_millis() as u64)
            .arg(&self.autoclaim_cursor)
            .arg("COUNT")
            .arg(BATCH)
            .query_async(&mut self.conn)
            .await
            .map_err(redis_error)?;
        self.autoclaim_cursor = reply.next_stream_id;
        for entry in reply.claimed {
            let due: Option<f64> = redis::cmd("ZSCORE")
                .arg(&self.group.delayed)
                .arg(&entry.id)
                .query_async(&mut self.conn)
                .await
                .map_err(redis_error)?;
            if due.is_some_and(|due| due > now_millis() as f64) {
                continue;
            }
            self.push_redelivered(entry).await?;
        }
        Ok(())
    }

    async fn read_new(&mut self) -> Result<(), BusError> {
        let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(&self.group.group)
            .arg(&self.group.consumer)
            .arg("COUNT")
            .arg(BATCH)
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(&self.group.stream)
            .arg(">")
            .query_async(&mut self.conn)
            .await
            .map_err(redis_error)?;
        for stream in reply.into_iter().flat_map(|r| r.keys) {
            for entry in stream.ids {
                self.push(entry, 1, false);
            }
        }
        Ok(())
    }

    async fn push_redelivered(&mut self, entry: StreamId) -> Result<(), BusError> {
        let pending: StreamPendingCountReply = redis::cmd("XPENDING")
            .arg(&self.group.stream)
            .arg(&self.group.group)
            .arg(&entry.id)
            .arg(&entry.id)
            .arg(1)
            .query_async(&mut self.conn)
            .await
            .map_err(redis_error)?;
        let attempt = pending.ids.first().map_or(1, |p| p.times_delivered);
        self.push(entry, u32::try_from(attempt).unwrap_or(u32::MAX), true);
        Ok(())
    }

    fn push(&mut self, entry: StreamId, attempt: u32, redelivered: bool) {
        self.leases.hold(entry.id.clone());
        let message = entry::message(entry.map);
        self.buffer.push_back(Fetched {
            id: entry.id,
            attempt,
            message,
            redelivered,
        });
    }

    fn settle(&self, id: String, redelivered: bool) -> RedisSettle {
        RedisSettle {
            conn: self.settling.clone(),
            group: Arc::clone(&self.group),
            id,
            redelivered,
            leases: Arc::clone(&self.leases),
        }
    }
}

#[async_trait]
impl Subscription for RedisSubscription {
    async fn next(&mut self) -> Option<Result<Box<dyn Delivery>, BusError>> {
        loop {
            if let Some(fetched) = self.buffer.pop_front() {
                let settle = self.settle(fetched.id, fetched.redelivered);
                return Some(Ok(
                    Delivered::new(fetched.message, fetched.attempt, settle).boxed()
                ));
            }
            if let Err(error) = self.fill().await {
                return Some(Err(error));
            }
        }
    }

    async fn close(mut self: Box<Self>) -> Result<(), BusError> {
        let unhanded: Vec<Fetched> = self.buffer.drain(..).collect();
        if self.ephemeral {
            // The instance's own group goes with it, entries it still held included.
            self.registration.take();
            return ephemeral::destroy(&mut self.conn, &self.group).await;
        }
        for fetched in unhanded {
            self.settle(fetched.id, fetched.redelivered)
                .retry_at(now_millis())
                .await?;
        }
        Ok(())
    }
}

/// Creates the consumer group at the stream's start, and the stream, unless they exist.
async fn create_group(
    conn: &mut ConnectionManager,
    config: &SubscriptionConfig,
) -> Result<(), BusError> {
    let created = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&config.topic)
        .arg(&config.consumer_group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async::<()>(conn)
        .await;
    match created {
        Err(error) if error.code() == Some("BUSYGROUP") => Ok(()),
        other => other.map_err(redis_error),
    }
}

/// Fails with [`BusError::MissingTopology`] unless the stream has the consumer group.
async fn require_group(
    conn: &mut ConnectionManager,
    config: &SubscriptionConfig,
) -> Result<(), BusError> {
    let stream = TopologyItem::new("stream", &config.topic);
    let groups: Result<StreamInfoGroupsReply, _> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(&config.topic)
        .query_async(conn)
        .await;
    match groups {
        Ok(reply) if reply.groups.iter().any(|g| g.name == config.consumer_group) => Ok(()),
        Ok(_) => Err(BusError::missing(
            "redis",
            TopologyItem::new("consumer group", &config.consumer_group).of(stream),
        )),
        Err(error) if error.detail().is_some_and(|d| d.contains("no such key")) => {
            Err(BusError::missing("redis", stream))
        }
        Err(error) => Err(redis_error(error)),
    }
}

/// Held entries whose idle time `XCLAIM … JUSTID` resets every `period` (a third of the ack
/// deadline), so a slow handler's entry is not claimed by another member; claiming with
/// `JUSTID` leaves the delivery count alone.
fn renewed_leases(
    conn: ConnectionManager,
    group: Arc<GroupEntry>,
    period: Duration,
) -> Arc<Leases<String>> {
    Leases::renewed_every(period, move |held: Vec<String>| {
        let (mut conn, group) = (conn.clone(), Arc::clone(&group));
        async move {
            let renewed = redis::cmd("XCLAIM")
                .arg(&group.stream)
                .arg(&group.group)
                .arg(&group.consumer)
                .arg(0)
                .arg(&held)
                .arg("JUSTID")
                .query_async::<redis::Value>(&mut conn)
                .await;
            if let Err(error) = renewed {
                tracing::debug!(%error, stream = %group.stream, "redis: renewing held entries failed; trying again later");
            }
        }
    })
}
