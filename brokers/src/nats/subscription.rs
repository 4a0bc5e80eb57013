//! One member of a consumer group: pulls from the group's durable consumer into an inbox of
//! its own, keeping at most its max in-flight messages asked for and not yet handed out; on
//! close it hands back whatever its open pulls still bring.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::consumer::pull::BatchConfig;
use async_nats::{StatusCode, Subject};
use async_trait::async_trait;
use event_bus_core::kit::Leases;
use event_bus_core::{BusError, Delivery, Subscription, SubscriptionConfig};
use futures::StreamExt;
use tokio::time::Instant;

use super::NatsError;
use super::delivery::{NatsSettle, delivered, renewed_leases};
use super::streams::Streams;

/// How long the server keeps a pull open; also the longest a closing member waits for it.
const PULL_EXPIRES: Duration = Duration::from_secs(1);
/// How long past its expiry a pull's end may take to arrive before the pull counts as lost
/// (the server restarted, say) and the member pulls again.
const PULL_GRACE: Duration = Duration::from_secs(1);

/// Pulls one group's consumer for one member.
pub(super) struct NatsSubscription {
    client: async_nats::Client,
    streams: Arc<Streams>,
    config: SubscriptionConfig,
    consumer: PullConsumer,
    /// Messages asked for at once.
    batch: usize,
    /// `None` once closed.
    inbox: Option<Inbox>,
    /// Messages handed out and not settled.
    leases: Arc<Leases<String>>,
}

impl NatsSubscription {
    /// Creates the group's consumer (and the topic's stream) as needed, and the member's inbox.
    pub(super) async fn open(
        client: async_nats::Client,
        streams: Arc<Streams>,
        config: &SubscriptionConfig,
    ) -> Result<Self, BusError> {
        let consumer = streams.consumer(config).await?;
        let inbox = Subject::from(client.new_inbox());
        let messages = client
            .subscribe(inbox.clone())
            .await
            .map_err(NatsError::Subscribe)?;
        let leases = renewed_leases(client.clone(), streams.ack_wait() / 3);
        Ok(Self {
            leases,
            client,
            streams,
            config: config.clone(),
            consumer,
            batch: config.max_in_flight.max(1),
            inbox: Some(Inbox {
                subject: inbox,
                messages,
                owed: 0,
                open_until: Instant::now(),
            }),
        })
    }

    /// After a pull went unanswered (the server restarted, or the consumer is gone and the
    /// server stays silent) or was refused because the consumer is gone, creates the consumer
    /// again; an existing one with these settings is left as it is.
    async fn recreate_consumer(&mut self) -> Result<(), BusError> {
        self.consumer = self.streams.consumer(&self.config).await?;
        Ok(())
    }
}

#[async_trait]
impl Subscription for NatsSubscription {
    async fn next(&mut self) -> Option<Result<Box<dyn Delivery>, BusError>> {
        loop {
            let inbox = self.inbox.as_mut()?;
            if inbox.owed * 2 <= self.batch
                && let Err(error) = inbox.pull(&self.consumer, self.batch).await
            {
                return Some(Err(error));
            }
            match inbox.receive().await {
                Received::Message(message) => {
                    return Some(
                        delivered(self.client.clone(), message, &self.leases)
                            .map(|delivery| delivery.boxed())
                            .map_err(BusError::from),
                    );
                }
                Received::PullEnded => {}
                Received::Quiet => {
                    if let Err(error) = self.recreate_consumer().await {
                        return Some(Err(error));
                    }
                }
                Received::Refused(status) if status.consumer_gone() => {
                    tracing::warn!(
                        consumer = %self.consumer.cached_info().name,
                        status = %status.status,
                        description = %status.description,
                        "nats: the group's consumer is gone; creating it again"
                    );
                    if let Err(error) = self.recreate_consumer().await {
                        return Some(Err(error));
                    }
                }
                Received::Refused(status) => {
                    return Some(Err(NatsError::PullStatus {
                        consumer: self.consumer.cached_info().name.clone(),
                        status: status.status,
                        description: status.description,
                    }
                    .into()));
                }
                Received::Closed => {
                    self.inbox = None;
                    return None;
                }
            }
        }
    }

    /// Hands back every message the member's open pulls still bring, then leaves.
    /// An instance-scoped group's consumer is removed afterwards.
    async fn close(mut self: Box<Self>) -> Result<(), BusError> {
        let drained = match self.inbox.take() {
            Some(inbox) => inbox.drain(self.client.clone()).await,
            None => Ok(()),
        };
        if self.config.ephemeral {
            self.streams.delete_consumer(&self.config).await?;
        }
        drained
    }
}

impl Drop for NatsSubscription {
    fn drop(&mut self) {
        if let (Some(inbox), Ok(runtime)) =
            (self.inbox.take(), tokio::runtime::Handle::try_current())
        {
            let client = self.client.clone();
            runtime.spawn(async move {
                if let Err(error) = inbox.drain(client).await {
                    tracing::debug!(%error, "nats: handing back a dropped member's messages failed; they return after the ack wait");
                }
            });
        }
    }
}

/// A member's inbox, and what its open pulls still owe it.
struct Inbox {
    subject: Subject,
    messages: async_nats::Subscriber,
    /// Messages asked for and neither handed out nor reported unavailable: in the inbox,
    /// or still to come.
    owed: usize,
    /// When the newest open pull has surely ended.
    open_until: Instant,
}

/// A status that ended a pull.
struct PullStatus {
    status: StatusCode,
    description: String,
}

impl PullStatus {
    /// The pull was refused because the consumer does not exist (any more).
    fn consumer_gone(&self) -> bool {
        self.status == StatusCode::NO_RESPONDERS
            || (self.status == StatusCode::REQUEST_TERMINATED
                && self.description.eq_ignore_ascii_case("consumer deleted"))
    }
}

/// What the inbox received.
enum Received {
    /// A message of the consumer.
    Message(async_nats::Message),
    /// A pull expired or was served in part.
    PullEnded,
    /// The server refused a pull.
    Refused(PullStatus),
    /// Nothing came, and every open pull has ended without a word.
    Quiet,
    /// The client was closed.
    Closed,
}

impl Inbox {
    /// Asks for as many messages as bring what is owed up to `batch`.
    async fn pull(&mut self, consumer: &PullConsumer, batch: usize) -> Result<(), BusError> {
        let count = batch.saturating_sub(self.owed);
        if count == 0 {
            return Ok(());
        }
        let request = BatchConfig {
            batch: count,
            expires: Some(PULL_EXPIRES),
            ..Default::default()
        };
        consumer
            .request_batch(request, self.subject.clone())
            .await
            .map_err(|source| NatsError::Pull {
                consumer: consumer.cached_info().name.clone(),
                source,
            })?;
        self.owed += count;
        self.open_until = Instant::now() + PULL_EXPIRES + PULL_GRACE;
        Ok(())
    }

    /// Waits for the next message or the end of the open pulls. Cancel-safe: the inbox keeps
    /// whatever was not received.
    async fn receive(&mut self) -> Received {
        loop {
            let received = tokio::select! {
                biased;
                received = self.messages.next() => received,
                () = tokio::time::sleep_until(self.open_until) => {
                    self.owed = 0;
                    return Received::Quiet;
                }
            };
            let Some(message) = received else {
                return Received::Closed;
            };
            match message.status {
                None | Some(StatusCode::OK) => {
                    self.owed = self.owed.saturating_sub(1);
                    return Received::Message(message);
                }
                Some(StatusCode::IDLE_HEARTBEAT) => {}
                Some(StatusCode::TIMEOUT | StatusCode::NOT_FOUND) => {
                    self.pull_ended(&message);
                    return Received::PullEnded;
                }
                Some(status) => {
                    self.pull_ended(&message);
                    return Received::Refused(PullStatus {
                        status,
                        description: message.description.unwrap_or_default(),
                    });
                }
            }
        }
    }

    /// Forgets what an ended pull will not bring: the server says how many in
    /// `Nats-Pending-Messages`; without it, no pull is taken as open any more.
    fn pull_ended(&mut self, status: &async_nats::Message) {
        let unserved = status
            .headers
            .as_ref()
            .and_then(|headers| headers.get("Nats-Pending-Messages"))
            .and_then(|count| count.as_str().parse().ok());
        self.owed = match unserved {
            Some(unserved) => self.owed.saturating_sub(unserved),
            None => 0,
        };
    }

    /// Takes every message still owed until the open pulls have ended, then hands them all
    /// back (not before: a pull still open would bring them straight back here), and
    /// unsubscribes. Reports the first hand-back that failed.
    async fn drain(mut self, client: async_nats::Client) -> Result<(), BusError> {
        let mut held = Vec::new();
        while self.owed > 0 {
            match self.receive().await {
                Received::Message(message) => held.push(message),
                Received::PullEnded | Received::Refused(_) => {}
                Received::Quiet | Received::Closed => break,
            }
        }
        let handed_back = futures::future::join_all(held.into_iter().map(|message| {
            let client = client.clone();
            async move {
                match NatsSettle::of(client, &message) {
                    Ok(settle) => settle.send(AckKind::Nak(None)).await,
                    Err(error) => Err(error.into()),
                }
            }
        }))
        .await;
        let first_error = handed_back.into_iter().find_map(Result::err);
        if let Err(error) = self.messages.unsubscribe().await {
            tracing::debug!(%error, "nats: unsubscribing a closed member's inbox failed");
        }
        first_error.map_or(Ok(()), Err)
    }
}
