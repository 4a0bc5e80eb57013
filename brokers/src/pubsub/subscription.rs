//! One member of a consumer group: a streaming pull, the tenant check, the per-key gate of
//! ordered subscriptions, and what is handed out next.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::DateTime;
use event_bus_core::dead_letter::headers;
use event_bus_core::envelope::header_tenant;
use event_bus_core::kit::{ClosedFlag, Delivered};
use event_bus_core::{BusError, Delivery, Subscription, SubscriptionConfig};
use gcloud_gax::grpc::Code;
use gcloud_pubsub::subscriber::ReceivedMessage;
use gcloud_pubsub::subscription::Subscription as PubSubSubscriptionRef;
use tokio::sync::{Notify, mpsc};

use super::admin::{Admin, Wanted};
use super::attributes::{from_pubsub, mark_native_dead_letter};
use super::delivery::PubSubSettle;
use super::lease::{kept_leased, set_deadline};
use super::shared::{Ready, Shared};

/// Longest pause between pulls that fail.
const MAX_PULL_PAUSE: Duration = Duration::from_secs(5);
/// How long subscribing under `existing` topology waits for the first pull's answer, which
/// tells at once when the subscription is missing (a pull of an existing, empty one waits).
const FIRST_ANSWER: Duration = Duration::from_secs(2);

/// Receives a subscription's messages, pulled in the background.
pub(super) struct PubSubSubscription {
    shared: Arc<Shared>,
    admin: Admin,
    received: mpsc::Receiver<Result<ReceivedMessage, BusError>>,
    tenant: Option<String>,
    source_topics: HashMap<String, Option<String>>,
    /// Delete the subscription on close (an instance's own group).
    instance_scoped: bool,
    /// What the first pull brought, received while subscribing (see [`found`](Self::found)).
    first: Option<Result<ReceivedMessage, BusError>>,
}

impl PubSubSubscription {
    /// Starts pulling, at most the subscription's max in-flight messages ahead.
    pub(super) fn open(
        admin: Admin,
        subscription: PubSubSubscriptionRef,
        config: &SubscriptionConfig,
        wanted: Wanted,
    ) -> Self {
        let in_flight = config.max_in_flight.max(1);
        let leases = kept_leased(subscription.clone(), wanted.ack_deadline_seconds);
        let instance_scoped = wanted.instance_scoped;
        let (sender, received) = mpsc::channel(in_flight);
        let recreate = Recreate {
            admin: admin.clone(),
            config: config.clone(),
            wanted,
        };
        tokio::spawn(pull(subscription.clone(), sender, recreate));
        Self {
            shared: Arc::new(Shared {
                subscription,
                ordering: config.ordering,
                leases,
                closed: ClosedFlag::default(),
                state: Mutex::default(),
                notify: Notify::new(),
            }),
            admin,
            received,
            tenant: config.tenant.clone(),
            source_topics: HashMap::new(),
            instance_scoped,
            first: None,
        }
    }

    /// Waits up to [`FIRST_ANSWER`] for the first pull's answer: a missing subscription fails
    /// here, with [`BusError::MissingTopology`]; what else came is handed out first.
    pub(super) async fn found(mut self) -> Result<Self, BusError> {
        match tokio::time::timeout(FIRST_ANSWER, self.received.recv()).await {
            Ok(Some(Err(error @ BusError::MissingTopology { .. }))) => Err(error),
            Ok(Some(first)) => {
                self.first = Some(first);
                Ok(self)
            }
            Ok(None) | Err(_) => Ok(self),
        }
    }

    /// Takes a received message in: `None` when it is not to be handed out now (another
    /// tenant's, or waiting behind its key).
    async fn accept(&mut self, received: ReceivedMessage) -> Option<Ready> {
        let mut message = from_pubsub(&received.message);
        if let Some(tenant) = &self.tenant
            && header_tenant(&message).is_some_and(|named| named != tenant)
        {
            tracing::debug!(wanted = %tenant, "pubsub: a message of another tenant acknowledged unseen");
            // Acknowledged in the background, so that `next` stays cancel-safe.
            tokio::spawn(async move {
                if let Err(status) = received.ack().await {
                    tracing::debug!(%status, "pubsub: acknowledging another tenant's message failed");
                }
            });
            return None;
        }
        let published =
            received.message.publish_time.as_ref().and_then(|t| {
                DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0))
            });
        if let Some(source) = mark_native_dead_letter(&mut message, published)
            && let Some(topic) = self.source_topic(&source).await
        {
            message
                .headers
                .insert(headers::ORIGINAL_TOPIC.into(), topic);
        }
        self.shared.leases.hold(received.ack_id.clone());
        let ready = Ready {
            received,
            message,
            redeliveries: 0,
        };
        if !self.shared.ordering {
            return Some(ready);
        }
        let key = ready.key().map(str::to_owned);
        self.shared.lock().keys.admit(key.as_deref(), ready)
    }

    async fn source_topic(&mut self, subscription: &str) -> Option<String> {
        if !self.source_topics.contains_key(subscription) {
            let topic = self.admin.topic_of(subscription).await;
            self.source_topics.insert(subscription.to_owned(), topic);
        }
        self.source_topics.get(subscription).cloned().flatten()
    }

    fn hand_out(&self, ready: Ready) -> Box<dyn Delivery> {
        let attempt = match ready.received.delivery_attempt() {
            Some(reported) => u32::try_from(reported).unwrap_or(u32::MAX),
            None if ready.redeliveries == 0 => {
                let mut state = self.shared.lock();
                let seen = state
                    .seen
                    .entry(ready.received.message.message_id.clone())
                    .or_default();
                *seen += 1;
                *seen
            }
            None => self
                .shared
                .lock()
                .seen
                .get(&ready.received.message.message_id)
                .copied()
                .unwrap_or(1),
        };
        let attempt = attempt.saturating_add(ready.redeliveries);
        let message = ready.message.clone();
        let settle = PubSubSettle {
            shared: Arc::clone(&self.shared),
            ready,
        };
        Delivered::new(message, attempt, settle).boxed()
    }
}

#[async_trait]
impl Subscription for PubSubSubscription {
    async fn next(&mut self) -> Option<Result<Box<dyn Delivery>, BusError>> {
        loop {
            let ready = self.shared.lock().ready.pop_front();
            if let Some(ready) = ready {
                return Some(Ok(self.hand_out(ready)));
            }
            let received = match self.first.take() {
                Some(first) => Some(first),
                None => tokio::select! {
                    received = self.received.recv() => received,
                    () = self.shared.notify.notified() => continue,
                },
            };
            match received? {
                Ok(received) => {
                    if let Some(ready) = self.accept(received).await {
                        return Some(Ok(self.hand_out(ready)));
                    }
                }
                Err(error) => return Some(Err(error)),
            }
        }
    }

    /// Stops pulling and hands back everything received and not settled; an instance's own
    /// group is deleted instead.
    async fn close(mut self: Box<Self>) -> Result<(), BusError> {
        self.shared.closed.close();
        let mut held = Vec::new();
        self.received.close();
        if let Some(Ok(first)) = self.first.take() {
            held.push(first.ack_id);
        }
        while let Ok(received) = self.received.try_recv() {
            if let Ok(received) = received {
                held.push(received.ack_id);
            }
        }
        {
            let mut state = self.shared.lock();
            state.ready.clear();
            state.keys.clear();
        }
        held.extend(self.shared.leases.take_all());
        let subscription = &self.shared.subscription;
        if self.instance_scoped {
            super::admin::admin_call("DeleteSubscription", &subscription.id());
            return match subscription.delete(None).await {
                Err(status) if status.code() != Code::NotFound => Err(super::request_error(
                    "delete subscription",
                    &subscription.id(),
                    status,
                )),
                _ => Ok(()),
            };
        }
        set_deadline(&self.shared.subscription, held, 0)
            .await
            .map_err(|status| super::request_error("nack", &self.shared.subscription.id(), status))
    }
}

impl Drop for PubSubSubscription {
    fn drop(&mut self) {
        self.shared.closed.close();
    }
}

/// How to create the subscription again when it vanished (an emulator restarted, a
/// subscription deleted by hand).
struct Recreate {
    admin: Admin,
    config: SubscriptionConfig,
    wanted: Wanted,
}

/// Pulls (a long poll) a buffer's worth of messages once the buffer is empty (the handlers
/// still hold up to as many), until the receiver is gone. Fewer, larger pulls: the emulator's
/// work per pull grows with the backlog, so pulls of a few messages each made it do half as
/// much again per message; a larger buffer instead would spend delivery attempts on what a
/// closing member hands back.
/// What a pull brings after the subscription closed is handed back to Pub/Sub at once: the
/// pull is not cancelled, since messages the server already gave a cancelled pull would wait
/// out their ack deadline. A subscription that no longer exists is created again.
async fn pull(
    subscription: PubSubSubscriptionRef,
    sender: mpsc::Sender<Result<ReceivedMessage, BusError>>,
    recreate: Recreate,
) {
    let mut failures = 0_u32;
    let buffer = sender.max_capacity();
    loop {
        match sender.reserve_many(buffer).await {
            Ok(permits) => drop(permits),
            Err(_) => return,
        }
        let room = i32::try_from(sender.capacity().max(1)).unwrap_or(i32::MAX);
        match subscription.pull(room, None).await {
            Ok(messages) => {
                failures = 0;
                let mut messages = messages.into_iter();
                while let Some(message) = messages.next() {
                    if let Err(refused) = sender.send(Ok(message)).await {
                        let mut back: Vec<String> = messages.map(|m| m.ack_id).collect();
                        if let Ok(message) = refused.0 {
                            back.push(message.ack_id);
                        }
                        if let Err(status) = set_deadline(&subscription, back, 0).await {
                            tracing::debug!(%status, "pubsub: handing back messages pulled after close failed; they return when their deadline passes");
                        }
                        return;
                    }
                }
            }
            Err(_) if sender.is_closed() => return,
            Err(status) => {
                failures += 1;
                let error = if status.code() == Code::NotFound && !recreate.admin.topology.creates()
                {
                    BusError::missing(
                        "pubsub",
                        event_bus_core::TopologyItem::new("subscription", subscription.id()),
                    )
                } else if status.code() == Code::NotFound {
                    tracing::warn!(subscription = %subscription.id(), "pubsub: the subscription is gone; creating it again");
                    match recreate
                        .admin
                        .ensure_subscription(&recreate.config, &recreate.wanted)
                        .await
                    {
                        Ok(_) => super::request_error("pull", &subscription.id(), status),
                        Err(error) => error,
                    }
                } else {
                    super::request_error("pull", &subscription.id(), status)
                };
                if sender.send(Err(error)).await.is_err() {
                    return;
                }
                let exponent = failures.saturating_sub(1).min(6);
                let pause = (Duration::from_millis(100) * 2_u32.pow(exponent)).min(MAX_PULL_PAUSE);
                tokio::time::sleep(pause).await;
            }
        }
    }
}
