//! How a stream entry handed to a consumer is settled: `XACK`, or a due time in the group's
//! delayed-retry set.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use event_bus_core::kit::{Leases, Settle};
use event_bus_core::{BusError, Message};
use redis::aio::ConnectionManager;

use super::{now_millis, redis_error};

/// Where an entry lives: its stream, group, consumer, and the group's delayed-retry set.
#[derive(Debug)]
pub(super) struct GroupEntry {
    pub(super) stream: String,
    pub(super) group: String,
    pub(super) consumer: String,
    pub(super) delayed: String,
}

/// One pending entry of a group.
pub(super) struct RedisSettle {
    /// A connection that never blocks on a read, so settling never waits behind one.
    pub(super) conn: ConnectionManager,
    pub(super) group: Arc<GroupEntry>,
    pub(super) id: String,
    /// Whether the entry may be in the delayed-retry set: it was delivered before (a retry or
    /// an entry taken over), so acknowledging it also takes it out of the set.
    pub(super) redelivered: bool,
    /// The subscription's held entries, whose idle time is reset while they are held.
    pub(super) leases: Arc<Leases<String>>,
}

impl RedisSettle {
    /// Makes the entry due for any member of the group at `due_millis` (Unix milliseconds).
    pub(super) async fn retry_at(mut self, due_millis: u64) -> Result<(), BusError> {
        self.leases.release(&self.id);
        redis::cmd("ZADD")
            .arg(&self.group.delayed)
            .arg(due_millis)
            .arg(&self.id)
            .query_async::<()>(&mut self.conn)
            .await
            .map_err(redis_error)
    }
}

#[async_trait]
impl Settle for RedisSettle {
    async fn ack(mut self) -> Result<(), BusError> {
        self.leases.release(&self.id);
        let mut pipe = redis::pipe();
        pipe.cmd("XACK")
            .arg(&self.group.stream)
            .arg(&self.group.group)
            .arg(&self.id)
            .ignore();
        if self.redelivered {
            pipe.cmd("ZREM")
                .arg(&self.group.delayed)
                .arg(&self.id)
                .ignore();
        }
        pipe.query_async::<()>(&mut self.conn)
            .await
            .map_err(redis_error)
    }

    async fn retry(self, after: Duration, _: Message, _: u32) -> Result<(), BusError> {
        self.retry_at(now_millis() + after.as_millis() as u64).await
    }
}
