//! One consumed record handed to a consumer, settled by storing the partition's commit point,
//! or retried through the group's retry topic (or in this member, when order must be kept).

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use event_bus_core::{BusError, Delivery, Message, Nack};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc::UnboundedSender;

use super::context::GroupContext;
use super::headers::{RETRY_ATTEMPTS, RETRY_DUE_AT, RETRY_ORIGINAL_TOPIC, now_millis};
use super::offsets::OffsetTracker;
use super::publisher::KafkaPublisher;

/// Where a record came from and how often it was tried.
#[derive(Clone)]
pub(super) struct Pending {
    pub(super) message: Message,
    pub(super) attempt: u32,
    pub(super) topic: String,
    pub(super) partition: i32,
    pub(super) offset: i64,
    pub(super) generation: u64,
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
    pub(super) fn finish(&self, pending: &Pending) {
        let committable = self.tracker.lock().expect("offset tracker").settled(
            &pending.topic,
            pending.partition,
            pending.generation,
            pending.offset,
        );
        if let (Some(offset), Some(consumer)) = (committable, self.consumer.upgrade()) {
            let mut offsets = TopicPartitionList::new();
            let stored = offsets
                .add_partition_offset(&pending.topic, pending.partition, Offset::Offset(offset))
                .and_then(|()| consumer.store_offsets(&offsets));
            if let Err(error) = stored {
                tracing::debug!(%error, topic = %pending.topic, "kafka: storing an offset failed; the record may be delivered again");
            }
        }
        let _ = self.settled.send(Settled::Done {
            key: pending.message.key.clone(),
        });
    }

    /// Hands the record back to this member for another attempt at `due_at`.
    pub(super) fn retry_here(&self, mut pending: Pending, due_at: u64) {
        pending.attempt = pending.attempt.saturating_add(1);
        // A closed subscription drops it: its offset was never committed, so the group's next
        // member receives it.
        let _ = self.settled.send(Settled::RetryAt { pending, due_at });
    }
}

/// A consumed record; dropped unsettled, it is delivered again by this member.
pub(super) struct KafkaDelivery {
    member: Arc<Member>,
    pending: Option<Pending>,
}

impl KafkaDelivery {
    pub(super) fn new(member: Arc<Member>, pending: Pending) -> Self {
        Self {
            member,
            pending: Some(pending),
        }
    }

    fn finish(&mut self) {
        if let Some(pending) = self.pending.take() {
            self.member.finish(&pending);
        }
    }

    /// Puts a copy on the group's retry topic, then settles this record; if the copy cannot be
    /// written, the record is retried in this member instead, so it is never lost.
    async fn retry_after(&mut self, delay: Duration) -> Result<(), BusError> {
        let Some(pending) = self.pending.take() else {
            return Ok(());
        };
        let due_at = now_millis() + delay.as_millis() as u64;
        let Some(retry_topic) = &self.member.retry_topic else {
            self.member.retry_here(pending, due_at);
            return Ok(());
        };
        let extra = [
            (RETRY_ATTEMPTS, pending.attempt.to_string()),
            (RETRY_DUE_AT, due_at.to_string()),
            (RETRY_ORIGINAL_TOPIC, self.member.topic.clone()),
        ];
        match self
            .member
            .publisher
            .send(retry_topic, &pending.message, &extra)
            .await
        {
            Ok(()) => self.member.finish(&pending),
            Err(error) => {
                tracing::warn!(%error, topic = %retry_topic, "kafka: writing a retry failed; retrying in this member");
                self.member.retry_here(pending, due_at);
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Delivery for KafkaDelivery {
    fn message(&self) -> &Message {
        &self.pending.as_ref().expect("unsettled delivery").message
    }

    fn attempt(&self) -> u32 {
        self.pending.as_ref().map_or(1, |p| p.attempt)
    }

    async fn ack(mut self: Box<Self>) -> Result<(), BusError> {
        self.finish();
        Ok(())
    }

    async fn nack(mut self: Box<Self>, nack: Nack) -> Result<(), BusError> {
        match nack {
            Nack::Requeue => self.retry_after(Duration::ZERO).await,
            Nack::RequeueAfter(delay) => self.retry_after(delay).await,
            Nack::Discard => {
                self.finish();
                Ok(())
            }
        }
    }
}

impl Drop for KafkaDelivery {
    fn drop(&mut self) {
        if let Some(pending) = self.pending.take() {
            self.member.retry_here(pending, now_millis());
        }
    }
}
