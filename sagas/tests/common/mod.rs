//! Helpers shared by the saga tests.

#![allow(dead_code)]

#[cfg(feature = "postgres")]
pub mod postgres;

use std::sync::Arc;
use std::time::Duration;

use event_bus_core::{BusSettings, DomainEvent, EventBus, EventEnvelope, InMemoryBroker, Recorder};
use event_bus_sagas::shipped::user_registration::UserRegistered;
use event_bus_sagas::{SagaSettings, SagaState, StepOutcome, StepPhase, StepRecord};

/// How long a test waits for a saga before failing.
pub const WAIT: Duration = Duration::from_secs(30);

/// Saga settings with quick retries.
pub fn settings() -> SagaSettings {
    let mut settings = SagaSettings::default();
    settings.retry.initial_backoff = Duration::from_millis(5);
    settings.retry.max_backoff = Duration::from_millis(20);
    settings.max_step_attempts = 3;
    settings.max_compensation_attempts = 4;
    settings
}

/// A bus on a fresh in-memory broker.
pub fn memory_bus() -> Arc<EventBus> {
    Arc::new(EventBus::new(
        Arc::new(InMemoryBroker::new()),
        BusSettings::default(),
    ))
}

/// A user with a fresh id.
pub fn user() -> UserRegistered {
    let id = uuid::Uuid::now_v7().simple().to_string();
    UserRegistered {
        user_id: format!("u-{id}"),
        email: format!("{id}@example.com"),
        name: "Zoë".to_owned(),
    }
}

/// The envelope of a domain event, with an idempotency key of the event's own.
pub fn envelope<E: DomainEvent>(event: &E, key: &str) -> EventEnvelope {
    EventEnvelope::from_event(event)
        .unwrap()
        .source("test")
        .idempotency_key(key)
        .build()
}

/// Subscribes a recorder to `event_type`.
pub async fn record(bus: &EventBus, event_type: &str) -> Recorder {
    let recorder = Recorder::new();
    bus.subscribe(
        bus.subscription(event_type, "test-recorder"),
        recorder.clone(),
    )
    .await
    .unwrap();
    recorder
}

/// `(phase, step, outcome)` of each log entry, hooks left out.
pub fn log_of(records: &[StepRecord]) -> Vec<(StepPhase, String, StepOutcome)> {
    records
        .iter()
        .filter(|r| !r.step.starts_with("on_"))
        .map(|r| (r.phase, r.step.clone(), r.outcome))
        .collect()
}

/// Step names whose action (or compensation) succeeded, in log order.
pub fn succeeded(records: &[StepRecord], phase: StepPhase) -> Vec<String> {
    records
        .iter()
        .filter(|r| r.phase == phase && r.outcome == StepOutcome::Succeeded)
        .map(|r| r.step.clone())
        .collect()
}

/// The failure of a finished saga, or an empty string.
pub fn failure(state: &SagaState) -> &str {
    state.failure.as_deref().unwrap_or_default()
}
