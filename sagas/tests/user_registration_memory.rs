//! The user-registration saga on the in-memory bus and repository: happy path, a failure at
//! each step, retries, compensation failures, duplicates, replays, the switch, the timeout,
//! and resuming after a shutdown.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use event_bus_core::{DomainEvent, EventBus};
use event_bus_sagas::shipped::user_registration::{self, STEPS, UserRegistered};
use event_bus_sagas::shipped::{ExampleServices, Fault};
use event_bus_sagas::{
    MemorySagaRepository, SagaOrchestrator, SagaRepository, SagaSettings, SagaStatus, StartOutcome,
    StepOutcome, StepPhase, saga_id,
};

struct Fixture {
    bus: Arc<EventBus>,
    services: Arc<ExampleServices>,
    repository: Arc<MemorySagaRepository>,
    orchestrator: SagaOrchestrator,
}

fn fixture_with(settings: SagaSettings) -> Fixture {
    let bus = memory_bus();
    let services = Arc::new(ExampleServices::new());
    let repository = Arc::new(MemorySagaRepository::new());
    let orchestrator = SagaOrchestrator::new(bus.clone(), repository.clone(), settings);
    orchestrator
        .register(user_registration::definition(services.clone()))
        .unwrap();
    Fixture {
        bus,
        services,
        repository,
        orchestrator,
    }
}

fn fixture() -> Fixture {
    fixture_with(settings())
}

fn facts_of(user: &UserRegistered) -> Vec<String> {
    ["profile", "preferences", "welcome_email", "signup"]
        .iter()
        .map(|kind| format!("{kind}:{}", user.user_id))
        .collect()
}

async fn start(f: &Fixture, user: &UserRegistered) -> uuid::Uuid {
    let event = envelope(user, &format!("signup-{}", user.user_id));
    match f
        .orchestrator
        .start(user_registration::SAGA, &event)
        .await
        .unwrap()
    {
        StartOutcome::Started(id) => id,
        other => panic!("expected a start, got {other:?}"),
    }
}

#[tokio::test]
async fn a_registration_event_on_the_bus_runs_every_step_and_publishes_the_outcome() {
    let f = fixture();
    let created = record(&f.bus, "user.profile_created").await;
    let completed = record(&f.bus, "user.onboarding_completed").await;
    f.orchestrator.subscribe().await.unwrap();
    let user = user();
    let key = format!("signup-{}", user.user_id);
    f.bus.publish(&envelope(&user, &key)).await.unwrap();

    let id = saga_id(user_registration::SAGA, &key);
    let state = f.orchestrator.wait_finished(id, WAIT).await.unwrap();
    assert_eq!(state.status, SagaStatus::Completed, "{}", failure(&state));
    assert_eq!(state.completed_steps, 4);
    assert_eq!(f.services.facts(), facts_of(&user).into_iter().collect());
    let log = f.repository.steps(id).await.unwrap();
    assert_eq!(succeeded(&log, StepPhase::Action), STEPS);
    assert!(succeeded(&log, StepPhase::Compensation).is_empty());

    let profile = created.wait_for(1, WAIT).await.unwrap();
    assert_eq!(profile[0].aggregate_id, user.user_id);
    assert_eq!(profile[0].headers["x-saga-id"], id.to_string());
    let done = completed.wait_for(1, WAIT).await.unwrap();
    assert_eq!(done[0].payload["user_id"], user.user_id.as_str());
    f.orchestrator.shutdown().await;
}

#[tokio::test]
async fn a_failure_at_each_step_compensates_exactly_the_completed_steps_in_reverse() {
    for (failing, operation) in [
        "profile.create",
        "preferences.create",
        "welcome_email.send",
        "analytics.record",
    ]
    .into_iter()
    .enumerate()
    {
        let f = fixture();
        let failed_events = record(&f.bus, "user.registration_failed").await;
        f.services.fail(operation, Fault::Permanent);
        let user = user();
        let id = start(&f, &user).await;
        let state = f.orchestrator.wait_finished(id, WAIT).await.unwrap();
        assert_eq!(state.status, SagaStatus::Compensated, "failing {operation}");
        assert!(
            failure(&state).starts_with(&format!("step `{}` failed", STEPS[failing])),
            "{}",
            failure(&state)
        );
        assert!(
            f.services.facts().is_empty(),
            "left behind: {:?}",
            f.services.facts()
        );

        let log = f.repository.steps(id).await.unwrap();
        assert_eq!(succeeded(&log, StepPhase::Action), STEPS[..failing]);
        let mut undone: Vec<&str> = STEPS[..failing].to_vec();
        undone.reverse();
        assert_eq!(
            succeeded(&log, StepPhase::Compensation),
            undone,
            "failing {operation}"
        );
        assert!(log.iter().any(|r| r.step == STEPS[failing]
            && r.phase == StepPhase::Action
            && r.outcome == StepOutcome::Failed));

        let reported = failed_events.wait_for(1, WAIT).await.unwrap();
        assert_eq!(reported[0].payload["user_id"], user.user_id.as_str());
        f.orchestrator.shutdown().await;
    }
}

#[tokio::test]
async fn transient_failures_are_retried_with_backoff() {
    let f = fixture();
    f.services.fail("preferences.create", Fault::Transient(2));
    let user = user();
    let id = start(&f, &user).await;
    let state = f.orchestrator.wait_finished(id, WAIT).await.unwrap();
    assert_eq!(state.status, SagaStatus::Completed, "{}", failure(&state));
    assert_eq!(f.services.call_count("preferences.create"), 3);
    let log = f.repository.steps(id).await.unwrap();
    let retries = log
        .iter()
        .filter(|r| r.outcome == StepOutcome::Retrying)
        .count();
    assert_eq!(retries, 2);
}

#[tokio::test]
async fn a_step_failing_past_its_attempts_compensates() {
    let f = fixture();
    f.services.fail("welcome_email.send", Fault::Transient(100));
    let id = start(&f, &user()).await;
    let state = f.orchestrator.wait_finished(id, WAIT).await.unwrap();
    assert_eq!(state.status, SagaStatus::Compensated);
    assert_eq!(f.services.call_count("welcome_email.send"), 3);
    assert!(f.services.facts().is_empty());
}

#[tokio::test]
async fn compensations_are_retried_and_a_lasting_failure_is_reported_not_hidden() {
    let f = fixture();
    f.services.fail("analytics.record", Fault::Permanent);
    f.services.fail("preferences.delete", Fault::Transient(2));
    let id = start(&f, &user()).await;
    let state = f.orchestrator.wait_finished(id, WAIT).await.unwrap();
    assert_eq!(state.status, SagaStatus::Compensated);
    assert_eq!(f.services.call_count("preferences.delete"), 3);
    assert!(f.services.facts().is_empty());

    let f = fixture();
    f.services.fail("analytics.record", Fault::Permanent);
    f.services.fail("preferences.delete", Fault::Permanent);
    let user = user();
    let id = start(&f, &user).await;
    let state = f.orchestrator.wait_finished(id, WAIT).await.unwrap();
    assert_eq!(state.status, SagaStatus::Failed);
    assert!(
        failure(&state).contains("compensation of step `default_preferences` failed"),
        "{}",
        failure(&state)
    );
    assert!(
        f.services.has(&format!("profile:{}", user.user_id)),
        "stops at the failed one"
    );
    let failed = f.repository.list(&[SagaStatus::Failed]).await.unwrap();
    assert_eq!(failed.iter().map(|s| s.id).collect::<Vec<_>>(), [id]);
}

#[tokio::test]
async fn a_duplicate_trigger_does_not_start_a_second_saga() {
    let f = fixture();
    f.orchestrator.subscribe().await.unwrap();
    let user = user();
    let key = format!("signup-{}", user.user_id);
    let first = envelope(&user, &key);
    let second = envelope(&user, &key);
    assert_ne!(first.id, second.id, "two events, one idempotency key");
    f.bus.publish(&first).await.unwrap();
    f.bus.publish(&second).await.unwrap();
    f.bus.publish(&first).await.unwrap();

    let id = saga_id(user_registration::SAGA, &key);
    f.orchestrator.wait_finished(id, WAIT).await.unwrap();
    assert_eq!(
        f.orchestrator
            .start(user_registration::SAGA, &second)
            .await
            .unwrap(),
        StartOutcome::Duplicate(id)
    );
    assert_eq!(f.repository.list(&[]).await.unwrap().len(), 1);
    assert_eq!(f.services.call_count("profile.create"), 1);
}

#[tokio::test]
async fn a_replayed_event_never_starts_a_saga() {
    let f = fixture();
    let user = user();
    let replayed = envelope(&user, "replayed-signup").into_replay();
    assert_eq!(
        f.orchestrator
            .start(user_registration::SAGA, &replayed)
            .await
            .unwrap(),
        StartOutcome::Replay
    );

    f.orchestrator.subscribe().await.unwrap();
    let recorder = record(&f.bus, UserRegistered::EVENT_TYPE).await;
    f.bus.publish(&replayed).await.unwrap();
    let fresh = envelope(&user, "fresh-signup");
    f.bus.publish(&fresh).await.unwrap();
    recorder.wait_for(2, WAIT).await.unwrap();
    let id = saga_id(user_registration::SAGA, "fresh-signup");
    f.orchestrator.wait_finished(id, WAIT).await.unwrap();
    let sagas = f.repository.list(&[]).await.unwrap();
    assert_eq!(sagas.iter().map(|s| s.id).collect::<Vec<_>>(), [id]);
}

#[tokio::test]
async fn enable_sagas_false_switches_them_off() {
    let switch = SagaSettings::from_vars([("ENABLE_SAGAS", "false")]).unwrap();
    let f = fixture_with(SagaSettings {
        enabled: switch.enabled,
        ..settings()
    });
    f.orchestrator.subscribe().await.unwrap();
    let user = user();
    let event = envelope(&user, "disabled");
    assert_eq!(
        f.orchestrator
            .start(user_registration::SAGA, &event)
            .await
            .unwrap(),
        StartOutcome::Disabled
    );
    let recorder = record(&f.bus, UserRegistered::EVENT_TYPE).await;
    f.bus.publish(&event).await.unwrap();
    recorder.wait_for(1, WAIT).await.unwrap();
    assert!(f.repository.list(&[]).await.unwrap().is_empty());
    assert!(f.services.calls().is_empty());
}

#[tokio::test]
async fn the_saga_timeout_compensates_the_completed_and_the_hanging_step() {
    let f = fixture_with(SagaSettings {
        timeout: Duration::from_millis(300),
        ..settings()
    });
    f.services.fail("welcome_email.send", Fault::Hang);
    let user = user();
    let id = start(&f, &user).await;
    let state = f.orchestrator.wait_finished(id, WAIT).await.unwrap();
    assert_eq!(state.status, SagaStatus::Compensated);
    assert!(
        failure(&state).starts_with("timed out"),
        "{}",
        failure(&state)
    );
    let log = f.repository.steps(id).await.unwrap();
    assert!(
        log.iter()
            .any(|r| r.step == "welcome_email" && r.outcome == StepOutcome::TimedOut)
    );
    assert_eq!(
        succeeded(&log, StepPhase::Compensation),
        ["welcome_email", "default_preferences", "create_profile"]
    );
    assert!(f.services.facts().is_empty());
    assert_eq!(f.services.call_count("analytics.record"), 0);
}

#[tokio::test]
async fn a_saga_stopped_by_shutdown_resumes_in_a_new_orchestrator() {
    let f = fixture();
    f.services.fail("welcome_email.send", Fault::Hang);
    let user = user();
    let id = start(&f, &user).await;
    f.orchestrator
        .wait_until(id, WAIT, |s| s.completed_steps == 2)
        .await
        .unwrap();
    let hanging = f.services.clone();
    tokio::time::timeout(WAIT, async {
        while hanging.call_count("welcome_email.send") == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    f.orchestrator.shutdown().await;
    assert_eq!(
        f.repository.get(id).await.unwrap().unwrap().status,
        SagaStatus::Running
    );

    let services = Arc::new(ExampleServices::new());
    let restarted = SagaOrchestrator::new(memory_bus(), f.repository.clone(), settings());
    restarted
        .register(user_registration::definition(services.clone()))
        .unwrap();
    assert_eq!(restarted.resume().await.unwrap(), [id]);
    let state = restarted.wait_finished(id, WAIT).await.unwrap();
    assert_eq!(state.status, SagaStatus::Completed);
    assert_eq!(
        services.calls(),
        ["welcome_email.send", "analytics.record"],
        "completed steps are not run again"
    );
    let running = f.repository.list(&[SagaStatus::Running]).await.unwrap();
    assert!(running.is_empty());
}
