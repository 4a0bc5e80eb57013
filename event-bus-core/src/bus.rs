//! The event bus: publishing envelopes and running handlers over any backend.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tower_layer::Layer;
use tracing::Instrument;

use crate::config::BusSettings;
use crate::consumer::layers::standard_stack;
use crate::consumer::{ConsumeLayer, SubscriptionHandle, Worker};
use crate::envelope::EventEnvelope;
use crate::error::BusError;
use crate::handler::{CatchPanicLayer, Handler, TimeLimitLayer};
use crate::idempotency::{DedupStore, IdempotencyLayer, MemoryDedupStore};
use crate::message::Message;
use crate::telemetry::metrics::BusMetrics;
use crate::telemetry::trace_context;
use crate::topics::TopicNames;
use crate::transport::{Broker, SubscriptionConfig};

/// Publishes envelopes and runs handlers on one backend, with retry, dead-lettering,
/// idempotency, panic catching and tracing applied the same way on every backend.
pub struct EventBus {
    broker: Arc<dyn Broker>,
    settings: BusSettings,
    topics: TopicNames,
    dedup: Option<Arc<dyn DedupStore>>,
    subscriptions: Mutex<Vec<SubscriptionHandle>>,
    metrics: BusMetrics,
    consume_layers: Vec<Arc<dyn ConsumeLayer>>,
}

impl EventBus {
    /// A bus over `broker`, deduplicating in memory.
    pub fn new(broker: Arc<dyn Broker>, settings: BusSettings) -> Self {
        Self {
            metrics: BusMetrics::new(broker.name()),
            broker,
            topics: settings.topic_names(),
            dedup: Some(Arc::new(MemoryDedupStore::with_max_keys(
                settings.idempotency_max_keys,
            ))),
            settings,
            subscriptions: Mutex::default(),
            consume_layers: Vec::new(),
        }
    }

    /// Adds `layer` to the consume stack of every subscription made afterwards, below the
    /// bus's checks and tracing and above the retry decision (see
    /// [`consumer::layers`](crate::consumer::layers)); layers run in the order added.
    #[must_use]
    pub fn with_consume_layer(mut self, layer: impl ConsumeLayer) -> Self {
        self.consume_layers.push(Arc::new(layer));
        self
    }

    /// Deduplicates with `store`, or not at all with `None`.
    #[must_use]
    pub fn with_dedup_store(mut self, store: Option<Arc<dyn DedupStore>>) -> Self {
        self.dedup = store;
        self
    }

    /// The backend underneath.
    pub fn broker(&self) -> &Arc<dyn Broker> {
        &self.broker
    }

    /// The settings the bus was built with.
    pub fn settings(&self) -> &BusSettings {
        &self.settings
    }

    /// Topic and subscription names.
    pub fn topics(&self) -> &TopicNames {
        &self.topics
    }

    /// Publishes to the topic of the event's type.
    pub async fn publish(&self, event: &EventEnvelope) -> Result<(), BusError> {
        self.publish_to(&self.topics.topic(&event.event_type), event)
            .await
    }

    /// Publishes to the given topic.
    pub async fn publish_to(&self, topic: &str, event: &EventEnvelope) -> Result<(), BusError> {
        let span = tracing::info_span!(
            "event.publish",
            backend = self.broker.name(),
            topic,
            event_id = %event.id,
            event_type = %event.event_type,
            aggregate_id = %event.aggregate_id,
            correlation_id = %event.correlation_id,
            latency_ms = tracing::field::Empty,
        );
        async {
            let started = Instant::now();
            let result = match self.encode(event) {
                Ok(mut message) => {
                    trace_context::inject(&tracing::Span::current(), &mut message.headers);
                    self.broker.publish(topic, message).await
                }
                Err(error) => Err(error),
            };
            let elapsed = started.elapsed();
            tracing::Span::current().record("latency_ms", elapsed.as_secs_f64() * 1000.0);
            self.metrics
                .published(&event.event_type, result.is_ok(), elapsed);
            let latency_ms = elapsed.as_secs_f64() * 1000.0;
            match &result {
                Ok(()) => tracing::debug!(
                    target: "event_bus",
                    operation = "publish",
                    eventType = %event.event_type,
                    eventId = %event.id,
                    aggregateId = %event.aggregate_id,
                    latencyMs = latency_ms,
                    "event published"
                ),
                Err(error) => tracing::warn!(
                    target: "event_bus",
                    operation = "publish",
                    eventType = %event.event_type,
                    eventId = %event.id,
                    aggregateId = %event.aggregate_id,
                    latencyMs = latency_ms,
                    %error,
                    "publish failed"
                ),
            }
            result
        }
        .instrument(span)
        .await
    }

    /// Publishes several events, each to its type's topic, batched per topic; the result at
    /// index `i` is the outcome of `events[i]`. Every event carries the trace context of the
    /// caller's span.
    pub async fn publish_batch(&self, events: &[EventEnvelope]) -> Vec<Result<(), BusError>> {
        let mut results: Vec<Option<Result<(), BusError>>> = events.iter().map(|_| None).collect();
        let mut trace = BTreeMap::new();
        trace_context::inject(&tracing::Span::current(), &mut trace);
        let mut batches: Vec<TypeBatch<'_>> = Vec::new();
        let mut by_type: HashMap<&str, usize> = HashMap::new();
        for (index, event) in events.iter().enumerate() {
            match self.encode(event) {
                Ok(mut message) => {
                    message.headers.extend(
                        trace
                            .iter()
                            .map(|(name, value)| (name.clone(), value.clone())),
                    );
                    let place = *by_type.entry(&event.event_type).or_insert_with(|| {
                        batches.push(TypeBatch::new(&event.event_type));
                        batches.len() - 1
                    });
                    batches[place].push(index, message);
                }
                Err(error) => results[index] = Some(Err(error)),
            }
        }
        for batch in batches {
            let started = Instant::now();
            let topic = self.topics.topic(batch.event_type);
            let outcomes = self.broker.publish_batch(&topic, batch.messages).await;
            let elapsed = started.elapsed();
            let accepted = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
            self.metrics.published_many(
                batch.event_type,
                accepted,
                outcomes.len() - accepted,
                elapsed,
            );
            for (index, outcome) in batch.indexes.into_iter().zip(outcomes) {
                results[index] = Some(outcome);
            }
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(BusError::backend(
                        self.broker.name(),
                        "no result for a batch entry",
                    ))
                })
            })
            .collect()
    }

    fn encode(&self, event: &EventEnvelope) -> Result<Message, BusError> {
        let message = event.to_message_in(self.settings.content_mode)?;
        let limit = self.settings.max_message_bytes;
        if message.size() > limit {
            return Err(BusError::MessageTooLarge {
                size: message.size(),
                limit,
            });
        }
        Ok(message)
    }

    /// A subscription of the handler named `handler_name` to `event_type`, with the
    /// configured ordering, dead-letter topic, attempt limit, handler time limit and
    /// concurrency.
    pub fn subscription(&self, event_type: &str, handler_name: &str) -> SubscriptionConfig {
        SubscriptionConfig::new(
            self.topics.topic(event_type),
            self.topics.handler_subscription(event_type, handler_name),
        )
        .ordering(self.settings.enable_ordering)
        .dead_letter_topic(self.topics.dead_letter_topic())
        .dead_letter_subscription(&self.settings.dead_letter_subscription)
        .max_delivery_attempts(self.settings.dead_letter_max_retries)
        .handler_timeout(self.settings.handler_timeout)
        .max_in_flight(self.settings.max_concurrent_messages)
    }

    /// A subscription of the handler named `handler_name` to `event_type` that handles only
    /// the events of `tenant`, in a consumer group of that tenant's own.
    pub fn tenant_subscription(
        &self,
        event_type: &str,
        handler_name: &str,
        tenant: &str,
    ) -> SubscriptionConfig {
        self.subscription(event_type, handler_name).tenant(tenant)
    }

    /// Starts handling the subscription's events with `handler` in the background.
    pub async fn subscribe(
        &self,
        config: SubscriptionConfig,
        handler: impl Handler,
    ) -> Result<SubscriptionHandle, BusError> {
        // The time limit sits inside the idempotency layer, so a timed-out attempt releases
        // its claim like any other failure.
        let caught = CatchPanicLayer.layer(handler);
        let limited: Arc<dyn Handler> = match config.handler_timeout {
            Some(limit) => Arc::new(TimeLimitLayer::new(limit).layer(caught)),
            None => Arc::new(caught),
        };
        let handler: Arc<dyn Handler> = match &self.dedup {
            Some(store) => {
                // Renewed while the handler runs, which is never longer than its limit: a
                // claim never needs to outlast either.
                let lease = config
                    .handler_timeout
                    .map_or(self.settings.ack_deadline, |limit| {
                        limit.min(self.settings.ack_deadline)
                    });
                let layer = IdempotencyLayer::new(
                    Arc::clone(store),
                    &config.consumer_group,
                    self.settings.idempotency_ttl,
                )
                .lease(lease);
                Arc::new(layer.layer(limited))
            }
            None => limited,
        };
        let subscription = self.broker.subscribe(&config).await?;
        let publisher = Arc::clone(&self.broker);
        let stack = standard_stack(
            &config,
            self.broker.name(),
            self.settings.max_message_bytes,
            &self.consume_layers,
            handler,
        );
        let worker = Worker::new(config, stack, publisher, self.broker.name());
        let handle = SubscriptionHandle::spawn(worker, subscription);
        self.lock_subscriptions().push(handle.clone());
        Ok(handle)
    }

    /// Stops every subscription (finishing deliveries in flight), then flushes and closes
    /// the publisher.
    pub async fn shutdown(&self) -> Result<(), BusError> {
        let subscriptions = std::mem::take(&mut *self.lock_subscriptions());
        futures::future::join_all(subscriptions.iter().map(SubscriptionHandle::shutdown)).await;
        self.broker.close().await
    }

    fn lock_subscriptions(&self) -> std::sync::MutexGuard<'_, Vec<SubscriptionHandle>> {
        self.subscriptions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The events of one type in a `publish_batch`, with their places in the caller's slice.
struct TypeBatch<'a> {
    event_type: &'a str,
    indexes: Vec<usize>,
    messages: Vec<Message>,
}

impl<'a> TypeBatch<'a> {
    fn new(event_type: &'a str) -> Self {
        Self {
            event_type,
            indexes: Vec::new(),
            messages: Vec::new(),
        }
    }

    fn push(&mut self, index: usize, message: Message) {
        self.indexes.push(index);
        self.messages.push(message);
    }
}
