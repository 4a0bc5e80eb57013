//! What a step sees when it runs: the saga's data, its identity, and a way to publish.

use std::sync::Arc;

use event_bus_core::{DomainEvent, EventBus, EventEnvelope};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::StepError;
use crate::state::StepPhase;

/// The saga as one step (or outcome hook) sees it.
#[derive(Clone)]
pub struct StepContext {
    /// The saga.
    pub saga_id: Uuid,
    /// Name of the saga definition.
    pub saga_type: String,
    /// Name of the step, or of the hook (`on_completed`, `on_compensated`, `on_failed`).
    pub step: String,
    /// Action or compensation.
    pub phase: StepPhase,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// The trigger's payload under `trigger` and each succeeded step's output under its name.
    pub data: serde_json::Value,
    /// Why the saga is compensating or failed, when it is.
    pub failure: Option<String>,
    /// Correlation id of the trigger.
    pub correlation_id: Uuid,
    pub(crate) bus: Arc<EventBus>,
    pub(crate) replies: Arc<crate::command::Replies>,
}

/// The step's input is not what it expects; a permanent failure.
#[derive(Debug, thiserror::Error)]
#[error("saga data `{key}` is missing or malformed: {reason}")]
pub struct BadSagaData {
    /// The key under the saga data.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

impl StepContext {
    /// A key that is the same for every attempt of this step's action (or compensation) in
    /// this saga, for the called service to deduplicate with.
    pub fn idempotency_key(&self) -> String {
        format!("{}:{}:{}", self.saga_id, self.step, self.phase.as_str())
    }

    /// The triggering event's payload, decoded.
    pub fn trigger<T: DeserializeOwned>(&self) -> Result<T, StepError> {
        self.get("trigger")
    }

    /// The output of an earlier step, decoded.
    pub fn output<T: DeserializeOwned>(&self, step: &str) -> Result<T, StepError> {
        self.get(step)
    }

    /// Whether the named step's action succeeded in this saga.
    pub fn succeeded(&self, step: &str) -> bool {
        self.data.get(step).is_some()
    }

    fn get<T: DeserializeOwned>(&self, key: &str) -> Result<T, StepError> {
        let value = self.data.get(key).ok_or_else(|| {
            StepError::permanent(BadSagaData {
                key: key.to_owned(),
                reason: "missing".to_owned(),
            })
        })?;
        T::deserialize(value).map_err(|error| {
            StepError::permanent(BadSagaData {
                key: key.to_owned(),
                reason: error.to_string(),
            })
        })
    }

    /// Publishes a domain event on the bus, correlated with the saga's trigger. Its
    /// idempotency key is fixed per saga, step, phase and event type, so a retried step
    /// publishes a duplicate that consumers skip.
    pub async fn publish<E: DomainEvent>(&self, event: &E) -> Result<(), StepError> {
        let envelope = EventEnvelope::from_event(event)
            .map_err(StepError::permanent)?
            .source(format!("saga/{}", self.saga_type))
            .correlation_id(self.correlation_id.to_string())
            .header("x-saga-id", self.saga_id.to_string())
            .idempotency_key(format!("{}:{}", self.idempotency_key(), E::EVENT_TYPE))
            .build();
        self.bus.publish(&envelope).await?;
        Ok(())
    }
}
