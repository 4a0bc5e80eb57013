//! How a consumed record is settled: by storing the partition's commit point, or retried
//! through the group's retry topic (or in this member, when order must be kept).

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use event_bus_core::kit::Settle;
use event_bus_core::{BusError, Message};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc::UnboundedSender;

use super::context::GroupContext;
use super::headers::{RETRY_ATTEMPTS, RETRY_DUE_AT, RETRY_ORIGINAL_TOPIC, now_millis};
use super::offsets::OffsetTracker;
use super::publisher::KafkaPublisher;

/// Where a record sits in its partition, and in which assignment it was read.
#[derive(Clone, Debug)]
pub(super) struct Position {
    pub(super) topic: String,
    pub(super) partition: i32,
    pub(super) offset: i64,
    pub(super) generation: u64,
}

/// A record waiting in the member, with how often it was tried.
pub(super) struct Pending {
    pub(super) message: Message,
    pub(super) attempt: u32,
    pub(super) position: Position,
}

/// What a settled delivery tells its subscription.
pub(super) enum Settled {
    /// The record is done; the next one of its key may go out.
    Done { key: Option<String> },
    /// Deliver the record again at this time (Unix milliseconds); its key stays busy.
    RetryAt { pending: Pending, due_at: u64 },
}

/// What every delivery of one subscription shares.
pub(super) struct Member {
    pub(super) consumer: Weak<StreamConsumer<GroupContext>>,
    pub(super) tracker: Arc<Mutex<OffsetTracker>>,
    pub(super) publisher: Arc<KafkaPublisher>,
    /// The group's retry topic; `None` when order is kept (retries stay in this member).
    pub(super) retry_topic: Option<String>,
    /// The topic the subscription consumes.
    pub(super) topic: String,
    pub(super) settled: UnboundedSender<Settled>,
}

impl Member {
    /// Marks the record settled and stores the partition's new commit point, which the
    /// consumer commits in the background and when it closes.
    fn finish(&self, position: &Position, key: Option<String>) {
        let committable = self.tracker.lock().expect("offset tracker").settled(
            &position.topic,
            position.partition,
            position.generation,
            position.offset,
        );
        if let (Some(offset), Some(consumer)) = (committable, self.consumer.upgrade()) {
            let mut offsets = TopicPartitionList::new();
            let stored = offsets
                .add_partition_offset(&position.topic, position.partition, Offset::Offset(offset))
                .and_then(|()| consumer.store_offsets(&offsets));
            if let Err(error) = stored {
                tracing::debug!(%error, topic = %position.topic, "kafka: storing an offset failed; the record may be delivered again");
            }
        }
        let _ = self.settled.send(Settled::Done { key });
    }

    /// Hands the record back to this member for another attempt at `due_at`.
    fn retry_here(&self, mut pending: Pending, due_at: u64) {
        pending.attempt = pending.attempt.saturating_add(1);
        // A closed subscription drops it: its offset was never committed, so the group's next
        // member receives it.
        let _ = self.settled.send(Settled::RetryAt { pending, due_at });
    }
}

/// One record handed out by a member.
pub(super) struct KafkaSettle {
    pub(super) member: Arc<Member>,
    pub(super) position: Position,
    pub(super) key: Option<String>,
}

impl KafkaSettle {
    fn pending(self, message: Message, attempt: u32) -> (Arc<Member>, Pending) {
        let pending = Pending {
            message,
            attempt,
            position: self.position,
        };
        (self.member, pending)
    }
}

#[async_trait]
impl Settle for KafkaSettle {
    async fn ack(self) -> Result<(), BusError> {
        self.member.finish(&self.position, self.key);
        Ok(())
    }

    /// Puts a copy on the group's retry topic, then settles this record; if the copy cannot
    /// be written, the record is retried in this member instead, so it is never lost.
    async fn retry(self, after: Duration, message: Message, attempt: u32) -> Result<(), BusError> {
        let due_at = now_millis() + after.as_millis() as u64;
        let (member, pending) = self.pending(message, attempt);
        let Some(retry_topic) = &member.retry_topic else {
            member.retry_here(pending, due_at);
            return Ok(());
        };
        let extra = [
            (RETRY_ATTEMPTS, pending.attempt.to_string()),
            (RETRY_DUE_AT, due_at.to_string()),
            (RETRY_ORIGINAL_TOPIC, member.topic.clone()),
        ];
        match member
            .publisher
            .send(retry_topic, &pending.message, &extra)
            .await
        {
            Ok(()) => member.finish(&pending.position, pending.message.key),
            Err(error) => {
                tracing::warn!(%error, topic = %retry_topic, "kafka: writing a retry failed; retrying in this member");
                member.retry_here(pending, due_at);
            }
        }
        Ok(())
    }

    /// Delivered again by this member at once.
    fn hand_back(self, message: Message, attempt: u32) {
        let (member, pending) = self.pending(message, attempt);
        member.retry_here(pending, now_millis());
    }
}
