//! Ownership by lease on the in-memory repository, its clock moved by hand: a saga is driven by
//! one instance at a time, `resume` never takes one whose owner is alive, and a saga is taken
//! over once its lease expired or was released.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::*;
use event_bus_sagas::shipped::user_registration::{self, UserRegistered};
use event_bus_sagas::shipped::{ExampleServices, Fault};
use event_bus_sagas::{
    Created, Lease, ManualClock, MemorySagaRepository, RepositoryError, SagaOrchestrator,
    SagaRepository, SagaSettings, SagaState, SagaStatus, StartOutcome, saga_id,
};
use uuid::Uuid;

const LEASE: Duration = Duration::from_secs(60);

fn new_saga(key: &str) -> SagaState {
    let now = Utc::now();
    SagaState {
        id: saga_id("lease-test", key),
        saga_type: "lease-test".to_owned(),
        trigger_key: key.to_owned(),
        correlation_id: Uuid::now_v7(),
        status: SagaStatus::Running,
        data: serde_json::json!({ "trigger": {} }),
        completed_steps: 0,
        failure: None,
        deadline: now + chrono::Duration::seconds(600),
        created_at: now,
        updated_at: now,
        version: 0,
        owner: None,
        lease_expires_at: None,
    }
}

fn lease() -> Lease {
    Lease {
        owner: Uuid::now_v7(),
        duration: LEASE,
    }
}

#[tokio::test]
async fn a_saga_changes_owner_only_after_its_lease_expired_or_was_released() {
    let clock = Arc::new(ManualClock::new());
    let repository = MemorySagaRepository::with_clock(clock.clone());
    let types = ["lease-test".to_owned()];
    let (first, second, third) = (lease(), lease(), lease());
    let Created::New(stored) = repository.create(&new_saga("k"), &first).await.unwrap() else {
        panic!("new saga expected");
    };
    assert_eq!(stored.owner, Some(first.owner));

    clock.advance(LEASE - Duration::from_secs(1));
    assert!(
        repository
            .acquire(&second, &types, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        repository.renew(&[stored.id], &first).await.unwrap(),
        [stored.id]
    );
    clock.advance(LEASE - Duration::from_secs(1));
    assert!(
        repository
            .acquire(&second, &types, 10)
            .await
            .unwrap()
            .is_empty(),
        "the renewal moved the expiry"
    );

    clock.advance(Duration::from_secs(2));
    let taken = repository.acquire(&second, &types, 10).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(
        (taken[0].owner, taken[0].version),
        (Some(second.owner), stored.version + 1)
    );
    let late = repository.update(&stored, &[], &first).await.unwrap_err();
    assert!(matches!(late, RepositoryError::Conflict { .. }), "{late}");
    assert!(
        repository
            .renew(&[stored.id], &first)
            .await
            .unwrap()
            .is_empty()
    );
    let mut current = taken[0].clone();
    let lost = repository.update(&current, &[], &third).await.unwrap_err();
    assert!(matches!(lost, RepositoryError::LeaseLost { .. }), "{lost}");

    repository.release(stored.id, first.owner).await.unwrap();
    assert!(
        repository
            .acquire(&third, &types, 10)
            .await
            .unwrap()
            .is_empty(),
        "only the owner releases"
    );
    repository.release(stored.id, second.owner).await.unwrap();
    let taken = repository.acquire(&third, &types, 10).await.unwrap();
    assert_eq!(taken.len(), 1, "a released saga is taken at once");
    assert!(
        repository
            .acquire(&second, &["other".to_owned()], 10)
            .await
            .unwrap()
            .is_empty()
    );

    current = taken[0].clone();
    current.status = SagaStatus::Completed;
    let finished = repository.update(&current, &[], &third).await.unwrap();
    assert_eq!((finished.owner, finished.lease_expires_at), (None, None));
    clock.advance(LEASE * 2);
    assert!(
        repository
            .acquire(&second, &types, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

struct Instance {
    services: Arc<ExampleServices>,
    orchestrator: SagaOrchestrator,
}

fn instance(repository: Arc<MemorySagaRepository>, settings: SagaSettings) -> Instance {
    let services = Arc::new(ExampleServices::new());
    let orchestrator = SagaOrchestrator::new(memory_bus(), repository, settings);
    orchestrator
        .register(user_registration::definition(services.clone()))
        .unwrap();
    Instance {
        services,
        orchestrator,
    }
}

async fn start_hanging(first: &Instance, user: &UserRegistered) -> Uuid {
    first.services.fail("welcome_email.send", Fault::Hang);
    let event = envelope(user, &format!("signup-{}", user.user_id));
    let StartOutcome::Started(id) = first
        .orchestrator
        .start(user_registration::SAGA, &event)
        .await
        .unwrap()
    else {
        panic!("started expected");
    };
    let services = first.services.clone();
    tokio::time::timeout(WAIT, async {
        while services.call_count("welcome_email.send") == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the third step is in flight");
    id
}

#[tokio::test]
async fn resume_takes_nothing_a_live_instance_drives_and_a_clean_stop_hands_over_at_once() {
    let repository = Arc::new(MemorySagaRepository::new());
    let mut settings = settings();
    settings.lease = Duration::from_secs(1);
    let first = instance(repository.clone(), settings.clone());
    let id = start_hanging(&first, &user()).await;

    let second = instance(repository.clone(), settings);
    assert!(second.orchestrator.resume().await.unwrap().is_empty());
    // Several lease periods: the first instance keeps renewing, so nothing is taken over.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let state = repository.get(id).await.unwrap().unwrap();
    assert_eq!(state.owner, Some(first.orchestrator.instance()));
    assert_eq!(second.services.calls(), Vec::<String>::new());

    first.orchestrator.shutdown().await;
    let state = second.orchestrator.wait_finished(id, WAIT).await.unwrap();
    assert_eq!(state.status, SagaStatus::Completed);
    assert_eq!(
        second.services.calls(),
        ["welcome_email.send", "analytics.record"],
        "the step abandoned by the shutdown runs again; completed ones do not"
    );
    second.orchestrator.shutdown().await;
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_the_old_owner_writes_nothing_more() {
    let clock = Arc::new(ManualClock::new());
    let repository = Arc::new(MemorySagaRepository::with_clock(clock.clone()));
    let mut settings = settings();
    settings.lease = LEASE;
    let first = instance(repository.clone(), settings.clone());
    let id = start_hanging(&first, &user()).await;
    let second = instance(repository.clone(), settings);
    assert!(second.orchestrator.resume().await.unwrap().is_empty());

    // The first instance stops renewing (as if frozen or dead) past its lease.
    clock.advance(LEASE + Duration::from_secs(1));
    assert_eq!(second.orchestrator.resume().await.unwrap(), [id]);
    let state = second.orchestrator.wait_finished(id, WAIT).await.unwrap();
    assert_eq!(state.status, SagaStatus::Completed);
    assert_eq!(
        second.services.calls(),
        ["welcome_email.send", "analytics.record"]
    );
    let log = repository.steps(id).await.unwrap();
    first.orchestrator.shutdown().await;
    assert_eq!(
        repository.steps(id).await.unwrap(),
        log,
        "the old owner wrote nothing after the takeover"
    );
    assert_eq!(first.services.call_count("analytics.record"), 0);
    second.orchestrator.shutdown().await;
}
