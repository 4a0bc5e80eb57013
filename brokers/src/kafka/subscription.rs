//! One member of a consumer group: consumes the topic (and the group's retry topic), holds
//! back records that are not due yet, and with ordering on hands out one record per key at a
//! time.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use event_bus_core::kit::{Delivered, KeyGate};
use event_bus_core::{BusError, Delivery, Subscription, SubscriptionConfig};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::Notify;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use super::access::AccessWatch;
use super::context::GroupContext;
use super::delivery::{KafkaSettle, Member, Pending, Position, Settled};
use super::headers::{now_millis, received};
use super::kafka_error;
use super::offsets::OffsetTracker;
use super::options::KafkaOptions;
use super::publisher::KafkaPublisher;

/// Shortest wait for the group to assign partitions before `subscribe` returns anyway.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Consumes one group's topic and retry topic.
pub(super) struct KafkaSubscription {
    /// `None` once closed.
    consumer: Option<Arc<StreamConsumer<GroupContext>>>,
    member: Arc<Member>,
    settled: UnboundedReceiver<Settled>,
    ordering: bool,
    /// Records that may be handed out now.
    ready: VecDeque<Pending>,
    /// Records due later, by due time (Unix milliseconds) and arrival; `true` when their key
    /// is held already.
    delayed: BTreeMap<(u64, u64), (Pending, bool)>,
    arrivals: u64,
    /// With ordering: one record per key out at a time, the others waiting behind it.
    keys: KeyGate<Pending>,
}

impl KafkaSubscription {
    /// Creates (or under `EVENT_BUS_TOPOLOGY=existing` checks) the topic, the retry topic and
    /// the dead-letter topic, and joins the group.
    pub(super) async fn open(
        options: &KafkaOptions,
        publisher: Arc<KafkaPublisher>,
        config: &SubscriptionConfig,
    ) -> Result<Self, BusError> {
        let retry_topic = retry_topic(config);
        let mut topics = vec![config.topic.as_str()];
        topics.extend(retry_topic.as_deref());
        // Made (or checked) here too, so that `eventbus setup` provisions it.
        let mut used = topics.clone();
        used.extend(dead_letter_topic(config));
        publisher.admin().ensure(&used).await?;

        let tracker = Arc::new(Mutex::new(OffsetTracker::default()));
        let assigned = Arc::new(Notify::new());
        let watch = Arc::clone(publisher.watch());
        let context = GroupContext {
            tracker: Arc::clone(&tracker),
            assigned: Arc::clone(&assigned),
            watch: Arc::clone(&watch),
        };
        let consumer: StreamConsumer<GroupContext> = options
            .consumer_config(&config.consumer_group)
            .create_with_context(context)
            .map_err(kafka_error)?;
        consumer.subscribe(&topics).map_err(kafka_error)?;
        let consumer = Arc::new(consumer);
        let (sender, settled) = unbounded_channel();
        let member = Arc::new(Member {
            consumer: Arc::downgrade(&consumer),
            tracker,
            publisher,
            retry_topic,
            topic: config.topic.clone(),
            settled: sender,
        });
        let mut subscription = Self {
            consumer: Some(consumer),
            member,
            settled,
            ordering: config.ordering,
            ready: VecDeque::new(),
            delayed: BTreeMap::new(),
            arrivals: 0,
            keys: KeyGate::default(),
        };
        subscription
            .wait_for_assignment(
                &assigned,
                &watch,
                (options.session_timeout * 2).max(JOIN_TIMEOUT),
            )
            .await?;
        Ok(subscription)
    }

    /// Polls until the group assigned this member its partitions, so that a subscription is
    /// a member of its group when `subscribe` returns (and closing it leaves the group
    /// cleanly); records that arrive meanwhile wait in the subscription. After `timeout` it
    /// returns anyway and joining goes on in the background.
    async fn wait_for_assignment(
        &mut self,
        assigned: &Notify,
        watch: &AccessWatch,
        timeout: Duration,
    ) -> Result<(), BusError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let Some(consumer) = self.consumer.clone() else {
            return Ok(());
        };
        loop {
            tokio::select! {
                () = assigned.notified() => return Ok(()),
                refused = watch.wait() => return Err(refused),
                () = tokio::time::sleep_until(deadline) => {
                    tracing::warn!(topic = %self.member.topic, "kafka: no partition assignment yet; joining goes on in the background");
                    return Ok(());
                }
                record = consumer.recv() => match record {
                    Ok(record) => self.on_record(&record),
                    Err(error) => return Err(kafka_error(error)),
                },
            }
        }
    }

    fn delay(&mut self, due_at: u64, pending: Pending, key_held: bool) {
        self.arrivals += 1;
        self.delayed
            .insert((due_at, self.arrivals), (pending, key_held));
    }

    /// Makes a record ready, or queues it behind the record of its key that is out.
    fn admit(&mut self, pending: Pending) {
        let key = pending.message.key.clone().filter(|_| self.ordering);
        if let Some(ready) = self.keys.admit(key.as_deref(), pending) {
            self.ready.push_back(ready);
        }
    }

    /// The record of `key` that was out is done: the next one waiting goes out.
    fn release(&mut self, key: Option<String>) {
        let Some(key) = key.filter(|_| self.ordering) else {
            return;
        };
        if let Some(next) = self.keys.release(&key) {
            self.ready.push_back(next);
        }
    }

    fn on_settled(&mut self, settled: Settled) {
        match settled {
            Settled::Done { key } => self.release(key),
            Settled::RetryAt { pending, due_at } => self.delay(due_at, pending, true),
        }
    }

    fn on_record(&mut self, record: &rdkafka::message::BorrowedMessage<'_>) {
        use rdkafka::Message as _;
        let generation = self
            .member
            .tracker
            .lock()
            .expect("offset tracker")
            .received(record.topic(), record.partition(), record.offset());
        let Some(generation) = generation else {
            tracing::debug!(
                topic = record.topic(),
                partition = record.partition(),
                "kafka: record of a partition given to another member dropped"
            );
            return;
        };
        let read = received(record);
        let pending = Pending {
            message: read.message,
            attempt: read.previous_attempts.saturating_add(1),
            position: Position {
                topic: record.topic().to_owned(),
                partition: record.partition(),
                offset: record.offset(),
                generation,
            },
        };
        match read.due_at {
            Some(due_at) if due_at > now_millis() => self.delay(due_at, pending, false),
            _ => self.admit(pending),
        }
    }

    /// Moves records whose time has come to the ready queue; returns when the next is due.
    fn take_due(&mut self) -> Option<Duration> {
        let now = now_millis();
        while let Some(entry) = self.delayed.first_entry() {
            let due_at = entry.key().0;
            if due_at > now {
                return Some(Duration::from_millis(due_at - now));
            }
            let (pending, key_held) = entry.remove();
            if key_held {
                self.ready.push_back(pending);
            } else {
                self.admit(pending);
            }
        }
        None
    }

    /// The next ready record that still belongs to this member. A record read before its
    /// partition was revoked belongs to it again when the partition came back: librdkafka may
    /// go on from where it had fetched rather than from the committed offset, so the record
    /// is handed out in the new assignment instead of being dropped.
    fn pop_ready(&mut self) -> Option<Pending> {
        while let Some(mut pending) = self.ready.pop_front() {
            let mut tracker = self.member.tracker.lock().expect("offset tracker");
            let position = &pending.position;
            if tracker.is_current(&position.topic, position.partition, position.generation) {
                return Some(pending);
            }
            if let Some(generation) =
                tracker.received(&position.topic, position.partition, position.offset)
            {
                pending.position.generation = generation;
                return Some(pending);
            }
            drop(tracker);
            // Its partition went to another member, which receives it again.
            self.release(pending.message.key.clone());
        }
        None
    }
}

/// The topic where a group's retries wait, `{topic}.retry.{group}`; none with ordering (a
/// member retries itself) or for an instance's own group (it would outlive it).
pub(super) fn retry_topic(config: &SubscriptionConfig) -> Option<String> {
    (!config.ordering && !config.ephemeral)
        .then(|| format!("{}.retry.{}", config.topic, config.consumer_group))
}

/// The dead-letter topic the bus publishes the subscription's failures to, unless it is the
/// subscription's own topic.
pub(super) fn dead_letter_topic(config: &SubscriptionConfig) -> Option<&str> {
    config
        .dead_letter_topic
        .as_deref()
        .filter(|topic| *topic != config.topic)
}

#[async_trait]
impl Subscription for KafkaSubscription {
    async fn next(&mut self) -> Option<Result<Box<dyn Delivery>, BusError>> {
        loop {
            while let Ok(settled) = self.settled.try_recv() {
                self.on_settled(settled);
            }
            let next_due = self.take_due();
            if let Some(pending) = self.pop_ready() {
                let settle = KafkaSettle {
                    member: Arc::clone(&self.member),
                    key: pending.message.key.clone(),
                    position: pending.position,
                };
                return Some(Ok(
                    Delivered::new(pending.message, pending.attempt, settle).boxed()
                ));
            }
            let wait = next_due.unwrap_or(Duration::from_secs(3600));
            let consumer = Arc::clone(self.consumer.as_ref()?);
            tokio::select! {
                record = consumer.recv() => match record {
                    Ok(record) => self.on_record(&record),
                    Err(error) => return Some(Err(kafka_error(error))),
                },
                Some(settled) = self.settled.recv() => self.on_settled(settled),
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Commits the settled prefix of every partition and leaves the group; what was not
    /// settled is delivered again to the group's next member.
    async fn close(mut self: Box<Self>) -> Result<(), BusError> {
        let committable = self
            .member
            .tracker
            .lock()
            .expect("offset tracker")
            .committable();
        let Some(consumer) = self.consumer.take() else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || {
            let mut offsets = TopicPartitionList::new();
            for (topic, partition, offset) in committable {
                offsets
                    .add_partition_offset(&topic, partition, Offset::Offset(offset))
                    .map_err(kafka_error)?;
            }
            if offsets.count() > 0
                && let Err(error) = consumer.commit(&offsets, CommitMode::Sync)
            {
                tracing::warn!(%error, "kafka: committing on close failed; the group's next member gets those records again");
            }
            consumer.unsubscribe();
            // Dropping the last handle closes the consumer, which leaves the group.
            drop(consumer);
            Ok(())
        })
        .await
        .map_err(|error| BusError::backend("kafka", error))?
    }
}

impl Drop for KafkaSubscription {
    /// Closing a consumer blocks until it left its group, so it happens off the runtime.
    fn drop(&mut self) {
        if let (Some(consumer), Ok(runtime)) =
            (self.consumer.take(), tokio::runtime::Handle::try_current())
        {
            runtime.spawn_blocking(move || drop(consumer));
        }
    }
}
