//! Starting a saga from its trigger: replays and duplicates never start a second one.

use chrono::Utc;
use event_bus_core::EventEnvelope;
use uuid::Uuid;

use super::SagaOrchestrator;
use crate::error::SagaError;
use crate::repository::Created;
use crate::state::{SagaState, SagaStatus};

/// Namespace of saga ids (UUID v5 over the saga name and the trigger's idempotency key).
const SAGA_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6a1f_3c2e_9b7d_4e51_8c0a_d2f4_b6e8_1357);

/// What [`SagaOrchestrator::start`] did with a trigger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartOutcome {
    /// A new saga was stored and is running.
    Started(Uuid),
    /// A saga for this trigger exists already; nothing new started.
    Duplicate(Uuid),
    /// The envelope is a replay (`x-replayed: true`); ignored.
    Replay,
    /// Sagas are disabled (`ENABLE_SAGAS=false`); ignored.
    Disabled,
}

/// The id of the saga `saga_type` started by a trigger with this idempotency key.
pub fn saga_id(saga_type: &str, trigger_key: &str) -> Uuid {
    Uuid::new_v5(
        &SAGA_ID_NAMESPACE,
        format!("{saga_type}\u{0}{trigger_key}").as_bytes(),
    )
}

/// The saga's correlation id for a trigger's: the same UUID when it is one (as on every event
/// the bus makes), otherwise a UUID v5 of it (events from other producers may use any string).
fn correlation_uuid(correlation_id: &str) -> Uuid {
    correlation_id
        .parse()
        .unwrap_or_else(|_| Uuid::new_v5(&SAGA_ID_NAMESPACE, correlation_id.as_bytes()))
}

impl SagaOrchestrator {
    /// Starts the saga `saga_type` for `trigger` and drives it in the background. The saga id
    /// derives from the trigger's idempotency key, so the same trigger twice starts one saga.
    pub async fn start(
        &self,
        saga_type: &str,
        trigger: &EventEnvelope,
    ) -> Result<StartOutcome, SagaError> {
        if !self.inner.settings.enabled {
            return Ok(StartOutcome::Disabled);
        }
        if trigger.is_replay() {
            tracing::debug!(event_id = %trigger.id, saga_type, "replayed event; no saga started");
            return Ok(StartOutcome::Replay);
        }
        let definition = self
            .definition(saga_type)
            .ok_or_else(|| SagaError::UnknownSaga(saga_type.to_owned()))?;
        let now = Utc::now();
        let timeout = definition.timeout.unwrap_or(self.inner.settings.timeout);
        let state = SagaState {
            id: saga_id(saga_type, &trigger.idempotency_key),
            saga_type: saga_type.to_owned(),
            trigger_key: trigger.idempotency_key.clone(),
            correlation_id: correlation_uuid(&trigger.correlation_id),
            status: SagaStatus::Running,
            data: serde_json::json!({ "trigger": trigger.payload }),
            completed_steps: 0,
            failure: None,
            deadline: now + chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::MAX),
            created_at: now,
            updated_at: now,
            version: 0,
            owner: None,
            lease_expires_at: None,
        };
        match self.inner.repository.create(&state, &self.lease()).await? {
            Created::New(state) => {
                tracing::info!(saga_id = %state.id, saga_type, trigger = %trigger.id, "saga started");
                self.inner.changed.notify_waiters();
                self.spawn_drive(state.id);
                Ok(StartOutcome::Started(state.id))
            }
            Created::Duplicate(existing) => {
                tracing::info!(saga_id = %existing.id, saga_type, "duplicate trigger; saga exists");
                Ok(StartOutcome::Duplicate(existing.id))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uuid_correlation_id_is_kept_and_any_other_maps_to_one_uuid() {
        let id = Uuid::now_v7();
        assert_eq!(correlation_uuid(&id.to_string()), id);
        let foreign = correlation_uuid("order-123");
        assert_eq!(foreign, correlation_uuid("order-123"));
        assert_ne!(foreign, correlation_uuid("order-124"));
    }
}
