//! The dead-letter handler: consumes a dead-letter topic and retries, discards or parks each
//! dead letter as its policy decides, within a maximum number of retries.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::error::BusError;
use crate::telemetry::metrics::BusMetrics;
use crate::transport::{Broker, Nack, SubscriptionConfig};

use super::{DeadLetter, DeadLetterStats, ParkedStore, ParkedStoreError};

/// What to do with a dead letter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Publish it again to its original topic.
    Retry,
    /// Drop it.
    Discard,
    /// Keep it in the parked store for a person.
    Park,
}

/// Decides per dead letter.
pub trait DeadLetterPolicy: Send + Sync {
    /// What to do with `letter`.
    fn decide(&self, letter: &DeadLetter) -> Action;
}

impl<F: Fn(&DeadLetter) -> Action + Send + Sync> DeadLetterPolicy for F {
    fn decide(&self, letter: &DeadLetter) -> Action {
        self(letter)
    }
}

/// Why a dead letter could not be dealt with; it stays where it was.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    /// Publishing or consuming failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The parked store failed.
    #[error(transparent)]
    Store(#[from] ParkedStoreError),
    /// No parked dead letter has this id.
    #[error("no parked dead letter with id {0}")]
    NotParked(Uuid),
    /// The dead letter does not name the topic it came from, so it cannot be retried.
    #[error("dead letter {0} names no original topic")]
    NoOriginalTopic(Uuid),
}

/// Consumes dead letters and acts on them. Retries go back to the original topic with a
/// redrive count; a dead letter already retried `max_retries` times is parked instead.
pub struct DeadLetterHandler {
    broker: Arc<dyn Broker>,
    parked: Arc<dyn ParkedStore>,
    policy: Arc<dyn DeadLetterPolicy>,
    max_retries: u32,
    stats: Mutex<DeadLetterStats>,
}

impl DeadLetterHandler {
    /// A handler publishing retries through `broker` and parking into `parked`; by default
    /// every dead letter is parked and at most 5 retries are allowed.
    pub fn new(broker: Arc<dyn Broker>, parked: Arc<dyn ParkedStore>) -> Self {
        Self {
            broker,
            parked,
            policy: Arc::new(|_: &DeadLetter| Action::Park),
            max_retries: 5,
            stats: Mutex::default(),
        }
    }

    /// Decides with `policy`.
    #[must_use]
    pub fn policy(mut self, policy: impl DeadLetterPolicy + 'static) -> Self {
        self.policy = Arc::new(policy);
        self
    }

    /// Sets how often one dead letter may be retried (`DEAD_LETTER_MAX_REDRIVES`).
    #[must_use]
    pub fn max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = max_retries;
        self
    }

    /// What was done so far, by reason, topic and event type.
    pub fn stats(&self) -> DeadLetterStats {
        self.stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The action the policy chose, turned into parking when no retry is left or possible.
    pub fn action_for(&self, letter: &DeadLetter) -> Action {
        match self.policy.decide(letter) {
            Action::Retry
                if letter.redrives >= self.max_retries || letter.original_topic.is_empty() =>
            {
                Action::Park
            }
            action => action,
        }
    }

    /// Decides and acts on one dead letter; returns what was done.
    pub async fn process(&self, letter: DeadLetter) -> Result<Action, DeadLetterError> {
        let action = self.action_for(&letter);
        match action {
            Action::Retry => self.redrive(&letter).await?,
            Action::Park => self.parked.park(&letter).await?,
            Action::Discard => {}
        }
        tracing::info!(
            id = %letter.id,
            event_type = letter.event_type.as_deref().unwrap_or("unknown"),
            reason = %letter.reason,
            topic = %letter.original_topic,
            ?action,
            "dead letter handled"
        );
        self.stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .count_action(&letter, action);
        Ok(action)
    }

    /// Publishes a dead letter to its original topic again.
    pub async fn redrive(&self, letter: &DeadLetter) -> Result<(), DeadLetterError> {
        if letter.original_topic.is_empty() {
            return Err(DeadLetterError::NoOriginalTopic(letter.id));
        }
        self.broker
            .publish(&letter.original_topic, letter.redrive_message())
            .await?;
        Ok(())
    }

    /// Redrives a parked dead letter and removes it from the parked store.
    pub async fn redrive_parked(&self, id: Uuid) -> Result<DeadLetter, DeadLetterError> {
        let letter = self
            .parked
            .get(id)
            .await?
            .ok_or(DeadLetterError::NotParked(id))?;
        self.redrive(&letter).await?;
        self.parked.remove(id).await?;
        Ok(letter)
    }

    /// Consumes the subscription's topic until `shutdown` is cancelled. A dead letter that
    /// cannot be dealt with is handed back to the topic for a later attempt.
    pub async fn run(
        &self,
        config: &SubscriptionConfig,
        shutdown: CancellationToken,
    ) -> Result<(), BusError> {
        self.consume(config, None, shutdown).await.map(|_| ())
    }

    /// Consumes the subscription's topic until nothing arrived for `idle`; returns how many
    /// dead letters were dealt with.
    pub async fn drain(
        &self,
        config: &SubscriptionConfig,
        idle: Duration,
    ) -> Result<u64, BusError> {
        self.consume(config, Some(idle), CancellationToken::new())
            .await
    }

    async fn consume(
        &self,
        config: &SubscriptionConfig,
        idle: Option<Duration>,
        shutdown: CancellationToken,
    ) -> Result<u64, BusError> {
        let mut subscription = self.broker.subscribe(config).await?;
        let mut handled = 0;
        loop {
            let next = tokio::select! {
                () = shutdown.cancelled() => break,
                next = subscription.next() => Some(next),
                () = sleep_or_forever(idle) => None,
            };
            let delivery = match next {
                None | Some(None) => break,
                Some(Some(Err(error))) => {
                    tracing::warn!(%error, "dead-letter subscription error");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                Some(Some(Ok(delivery))) => delivery,
            };
            let letter = DeadLetter::from_message(delivery.message().clone());
            match self.process(letter).await {
                Ok(_) => {
                    delivery.ack().await?;
                    BusMetrics::new(self.broker.name()).dead_letter_removed(&config.topic);
                    handled += 1;
                }
                Err(error) => {
                    tracing::warn!(%error, "dead letter left for a later attempt");
                    delivery
                        .nack(Nack::RequeueAfter(Duration::from_secs(1)))
                        .await?;
                }
            }
        }
        subscription.close().await?;
        Ok(handled)
    }
}

async fn sleep_or_forever(duration: Option<Duration>) {
    match duration {
        Some(duration) => tokio::time::sleep(duration).await,
        None => std::future::pending().await,
    }
}
