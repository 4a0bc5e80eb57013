//! One member of a stream consumer group: due retries first, then entries abandoned by other
//! members, then new entries.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use event_bus_core::kit::Delivered;
use event_bus_core::{BusError, Delivery, Message, Subscription, SubscriptionConfig};
use redis::aio::ConnectionManager;
use redis::streams::{
    StreamAutoClaimReply, StreamClaimReply, StreamId, StreamPendingCountReply, StreamReadReply,
};

use super::delivery::{GroupEntry, RedisSettle};
use super::{entry, now_millis, redis_error};

/// Entries fetched per round trip.
const BATCH: usize = 16;
/// Longest a read blocks on the server before the subscription looks at retries again.
const BLOCK: Duration = Duration::from_millis(500);

/// Reads one consumer group of one stream as a uniquely named consumer.
pub(super) struct RedisSubscription {
    conn: ConnectionManager,
    group: Arc<GroupEntry>,
    ack_deadline: Duration,
    autoclaim_cursor: String,
    /// Entries fetched and not handed out yet: id, attempt, message.
    buffer: VecDeque<(String, u32, Message)>,
    /// Destroy the group (and its retry set) on close.
    ephemeral: bool,
}

impl RedisSubscription {
    pub(super) fn new(
        conn: ConnectionManager,
        config: &SubscriptionConfig,
        ack_deadline: Duration,
    ) -> Self {
        let group = Arc::new(GroupEntry {
            stream: config.topic.clone(),
            group: config.consumer_group.clone(),
            consumer: format!("consumer-{}", uuid::Uuid::now_v7().simple()),
            delayed: format!("{}:delayed:{}", config.topic, config.consumer_group),
        });
        Self {
            conn,
            group,
            ack_deadline,
            autoclaim_cursor: "0-0".to_owned(),
            buffer: VecDeque::new(),
            ephemeral: config.ephemeral,
        }
    }

    async fn fill(&mut self) -> Result<(), BusError> {
        self.take_due_retries().await?;
        if self.buffer.is_empty() {
            self.take_abandoned().await?;
        }
        if self.buffer.is_empty() {
            self.read_new().await?;
        }
        Ok(())
    }

    async fn take_due_retries(&mut self) -> Result<(), BusError> {
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
        Ok(())
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
                self.push(entry, 1);
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
        self.push(entry, u32::try_from(attempt).unwrap_or(u32::MAX));
        Ok(())
    }

    fn push(&mut self, entry: StreamId, attempt: u32) {
        let message = entry::message(&entry.map);
        self.buffer.push_back((entry.id, attempt, message));
    }

    fn settle(&self, id: String) -> RedisSettle {
        RedisSettle {
            conn: self.conn.clone(),
            group: Arc::clone(&self.group),
            id,
        }
    }
}

#[async_trait]
impl Subscription for RedisSubscription {
    async fn next(&mut self) -> Option<Result<Box<dyn Delivery>, BusError>> {
        loop {
            if let Some((id, attempt, message)) = self.buffer.pop_front() {
                let settle = self.settle(id);
                return Some(Ok(Delivered::new(message, attempt, settle).boxed()));
            }
            if let Err(error) = self.fill().await {
                return Some(Err(error));
            }
        }
    }

    async fn close(mut self: Box<Self>) -> Result<(), BusError> {
        let unhanded: Vec<String> = self.buffer.drain(..).map(|(id, _, _)| id).collect();
        if self.ephemeral {
            // The instance's own group goes with it, entries it still held included.
            return redis::pipe()
                .cmd("XGROUP")
                .arg("DESTROY")
                .arg(&self.group.stream)
                .arg(&self.group.group)
                .ignore()
                .cmd("DEL")
                .arg(&self.group.delayed)
                .ignore()
                .query_async::<()>(&mut self.conn)
                .await
                .map_err(redis_error);
        }
        for id in unhanded {
            self.settle(id).retry_at(now_millis()).await?;
        }
        Ok(())
    }
}
