//! What the saga examples share: the bus from the environment, event printers, and printing
//! a saga's status and step log as an operator's CLI would.
#![allow(dead_code)]

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use event_bus_core::{BusSettings, DomainEvent, EventBus, EventEnvelope, Recorder};
use event_bus_sagas::{SagaOrchestrator, SagaState, SagaStatus, StartOutcome, StepOutcome};

/// Result of an example.
pub type ExampleResult<T = ()> = Result<T, Box<dyn Error>>;

/// How long an example waits for a saga.
pub const WAIT: Duration = Duration::from_secs(60);

/// The bus `EVENT_BUS_TYPE` selects (in memory by default).
pub async fn connect() -> ExampleResult<Arc<EventBus>> {
    let settings = BusSettings::from_env()?;
    println!(
        "bus: {}",
        event_bus_brokers::registry::selected(&settings)?.name
    );
    Ok(Arc::new(event_bus_brokers::connect(settings).await?))
}

/// Records the events the sagas publish, to print them in the order they were published.
pub struct EventLog {
    recorder: Recorder,
    shown: usize,
}

impl EventLog {
    /// Subscribes to each of `event_types`.
    pub async fn subscribe(bus: &EventBus, event_types: &[&str]) -> ExampleResult<Self> {
        let recorder = Recorder::new();
        for event_type in event_types {
            bus.subscribe(
                bus.subscription(event_type, "example-log"),
                recorder.clone(),
            )
            .await?;
        }
        Ok(Self { recorder, shown: 0 })
    }

    /// Waits for `count` more events and prints them, oldest first.
    pub async fn show(&mut self, count: usize) -> ExampleResult {
        let mut events = self.recorder.wait_for(self.shown + count, WAIT).await?;
        let mut new = events.split_off(self.shown);
        new.sort_by(|a, b| a.id.cmp(&b.id));
        for event in &new {
            println!("  event    {:<32} {}", event.event_type, event.payload);
        }
        self.shown += new.len();
        Ok(())
    }
}

/// Publishes `event` as a trigger with idempotency key `key` and waits for its saga to end.
pub async fn run_saga<E: DomainEvent>(
    orchestrator: &SagaOrchestrator,
    saga: &str,
    event: &E,
    key: &str,
) -> ExampleResult<SagaState> {
    let envelope = EventEnvelope::from_event(event)?
        .source("example")
        .idempotency_key(key)
        .build();
    orchestrator.bus().publish(&envelope).await?;
    let id = event_bus_sagas::saga_id(saga, key);
    let state = orchestrator
        .wait_until(id, WAIT, |s| s.status.is_terminal())
        .await?;
    print_saga(orchestrator, &state).await?;
    Ok(state)
}

/// Prints a saga's status and its step log.
pub async fn print_saga(orchestrator: &SagaOrchestrator, state: &SagaState) -> ExampleResult {
    println!(
        "saga {} {} -> {}{}",
        state.saga_type,
        state.id,
        state.status,
        state
            .failure
            .as_deref()
            .map(|f| format!(" ({f})"))
            .unwrap_or_default()
    );
    for record in orchestrator.repository().steps(state.id).await? {
        if record.outcome == StepOutcome::Started {
            continue;
        }
        println!(
            "  step     {:<12} {:<24} attempt {} {}{}",
            record.phase.as_str(),
            record.step,
            record.attempt,
            record.outcome.as_str(),
            record
                .error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// Checks a saga ended as expected.
pub fn expect(state: &SagaState, status: SagaStatus) -> ExampleResult {
    if state.status == status {
        Ok(())
    } else {
        Err(format!(
            "saga {} ended {}, expected {status}",
            state.id, state.status
        )
        .into())
    }
}

/// Shows that the same trigger again starts nothing.
pub async fn show_duplicate<E: DomainEvent>(
    orchestrator: &SagaOrchestrator,
    saga: &str,
    event: &E,
    key: &str,
) -> ExampleResult {
    let envelope = EventEnvelope::from_event(event)?
        .idempotency_key(key)
        .build();
    match orchestrator.start(saga, &envelope).await? {
        StartOutcome::Duplicate(id) => {
            println!("duplicate trigger: saga {id} exists, nothing started");
            Ok(())
        }
        other => Err(format!("a duplicate trigger gave {other:?}").into()),
    }
}

/// Quiet logs unless RUST_LOG says otherwise; JSON lines with EVENT_BUS_LOG_FORMAT=json.
pub fn init_tracing() {
    event_bus_core::telemetry::logging::init_logging("error").expect("logging set up");
}
