//! One stream entry handed to a consumer, settled with `XACK` or a due time for retry.

use async_trait::async_trait;
use event_bus_core::{BusError, Delivery, Message, Nack};
use redis::aio::ConnectionManager;

use super::redis_error;
use super::subscription::now_millis;

/// Where an entry lives: its stream, group, consumer, and the group's delayed-retry set.
#[derive(Clone, Debug)]
pub(super) struct GroupEntry {
    pub(super) stream: String,
    pub(super) group: String,
    pub(super) consumer: String,
    pub(super) delayed: String,
}

/// A delivered stream entry; dropped unsettled, it is handed back to the group at once.
pub(super) struct RedisDelivery {
    conn: ConnectionManager,
    group: GroupEntry,
    id: String,
    attempt: u32,
    message: Message,
    settled: bool,
}

impl RedisDelivery {
    pub(super) fn new(
        conn: ConnectionManager,
        group: GroupEntry,
        id: String,
        attempt: u32,
        message: Message,
    ) -> Self {
        Self {
            conn,
            group,
            id,
            attempt,
            message,
            settled: false,
        }
    }

    async fn ack_entry(&mut self) -> Result<(), BusError> {
        self.settled = true;
        redis::pipe()
            .cmd("XACK")
            .arg(&self.group.stream)
            .arg(&self.group.group)
            .arg(&self.id)
            .ignore()
            .cmd("ZREM")
            .arg(&self.group.delayed)
            .arg(&self.id)
            .ignore()
            .query_async::<()>(&mut self.conn)
            .await
            .map_err(redis_error)
    }

    async fn retry_at(&mut self, due_millis: u64) -> Result<(), BusError> {
        self.settled = true;
        redis::cmd("ZADD")
            .arg(&self.group.delayed)
            .arg(due_millis)
            .arg(&self.id)
            .query_async::<()>(&mut self.conn)
            .await
            .map_err(redis_error)
    }

    /// Makes the entry due for redelivery to any member now.
    pub(super) async fn hand_back(mut self) -> Result<(), BusError> {
        self.retry_at(now_millis()).await
    }
}

#[async_trait]
impl Delivery for RedisDelivery {
    fn message(&self) -> &Message {
        &self.message
    }

    fn attempt(&self) -> u32 {
        self.attempt
    }

    async fn ack(mut self: Box<Self>) -> Result<(), BusError> {
        self.ack_entry().await
    }

    async fn nack(mut self: Box<Self>, nack: Nack) -> Result<(), BusError> {
        match nack {
            Nack::Requeue => self.retry_at(now_millis()).await,
            Nack::RequeueAfter(delay) => {
                self.retry_at(now_millis() + delay.as_millis() as u64).await
            }
            Nack::Discard => self.ack_entry().await,
        }
    }
}

impl Drop for RedisDelivery {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut abandoned = Self {
            conn: self.conn.clone(),
            group: self.group.clone(),
            id: std::mem::take(&mut self.id),
            attempt: self.attempt,
            message: Message::default(),
            settled: false,
        };
        runtime.spawn(async move {
            if let Err(error) = abandoned.retry_at(now_millis()).await {
                tracing::warn!(%error, "handing back an unsettled entry failed; it returns after the ack deadline");
            }
        });
    }
}
