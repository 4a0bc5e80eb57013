//! The PostgreSQL repository against the server on 127.0.0.1:5432, each test in a schema of
//! its own: optimistic concurrency, the unique trigger, status queries, and the user
//! registration saga end to end.
#![cfg(feature = "postgres")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::postgres::TestSchema;
use common::*;
use event_bus_sagas::shipped::user_registration::{self, STEPS};
use event_bus_sagas::shipped::{ExampleServices, Fault};
use event_bus_sagas::{
    Created, Lease, PgSagaRepository, RepositoryError, SagaOrchestrator, SagaRepository, SagaState,
    SagaStatus, StartOutcome, StepOutcome, StepPhase, StepRecord, saga_id,
};

fn new_saga(trigger_key: &str) -> SagaState {
    let now = Utc::now();
    SagaState {
        id: saga_id("test-saga", trigger_key),
        saga_type: "test-saga".to_owned(),
        trigger_key: trigger_key.to_owned(),
        correlation_id: uuid::Uuid::now_v7(),
        status: SagaStatus::Running,
        data: serde_json::json!({"trigger": {"n": 1, "name": "Zoë"}}),
        completed_steps: 0,
        failure: None,
        deadline: now + chrono::Duration::seconds(60),
        created_at: now,
        updated_at: now,
        version: 0,
        owner: None,
        lease_expires_at: None,
    }
}

/// A lease of one test's own instance.
fn lease() -> Lease {
    Lease {
        owner: uuid::Uuid::now_v7(),
        duration: Duration::from_secs(60),
    }
}

/// `SAGA_DATABASE_URL` with `sslmode=require` (the server's TLS is on): the repository's
/// connections are encrypted and it stores and reads sagas.
#[tokio::test]
async fn the_repository_works_over_tls() {
    let schema = TestSchema::new();
    let url = format!("{}?sslmode=require", common::postgres::DATABASE_URL);
    let repository = PgSagaRepository::connect(&url, &schema.name)
        .await
        .expect("connect over TLS");
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(repository.pool())
            .await
            .unwrap();
    assert!(encrypted, "the connection is not encrypted");
    let Created::New(stored) = repository
        .create(&new_saga("tls-1"), &lease())
        .await
        .unwrap()
    else {
        panic!("new saga expected");
    };
    let read = repository.get(stored.id).await.unwrap().expect("stored");
    assert_eq!(read.trigger_key, "tls-1");
}

#[tokio::test]
async fn a_stale_version_is_a_conflict_and_writes_nothing() {
    let schema = TestSchema::new();
    let repository = schema.repository().await;
    let lease = lease();
    let Created::New(stored) = repository.create(&new_saga("k-1"), &lease).await.unwrap() else {
        panic!("new saga expected");
    };
    assert_eq!(stored.version, 1);
    assert_eq!(stored.data["trigger"]["name"], "Zoë");

    let mut advanced = stored.clone();
    advanced.completed_steps = 1;
    let entry = StepRecord {
        saga_id: stored.id,
        step_index: 0,
        step: "first".to_owned(),
        phase: StepPhase::Action,
        attempt: 1,
        outcome: StepOutcome::Succeeded,
        error: None,
        at: Utc::now(),
    };
    let saved = repository
        .update(&advanced, std::slice::from_ref(&entry), &lease)
        .await
        .unwrap();
    assert_eq!(saved.version, 2);

    let mut stale = stored.clone();
    stale.status = SagaStatus::Compensating;
    let error = repository
        .update(&stale, std::slice::from_ref(&entry), &lease)
        .await
        .unwrap_err();
    assert!(
        matches!(error, RepositoryError::Conflict { expected: 1, .. }),
        "{error}"
    );
    let now = repository.get(stored.id).await.unwrap().unwrap();
    assert_eq!(
        (now.status, now.completed_steps, now.version),
        (SagaStatus::Running, 1, 2)
    );
    assert_eq!(repository.steps(stored.id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_same_trigger_stores_one_saga_even_from_concurrent_writers() {
    let schema = TestSchema::new();
    let repository = Arc::new(schema.repository().await);
    let writers = (0..8).map(|_| {
        let repository = repository.clone();
        tokio::spawn(async move {
            repository
                .create(&new_saga("same"), &lease())
                .await
                .unwrap()
        })
    });
    let outcomes = futures::future::join_all(writers).await;
    let new = outcomes
        .iter()
        .filter(|o| matches!(o.as_ref().unwrap(), Created::New(_)))
        .count();
    assert_eq!(new, 1);
    assert_eq!(repository.list(&[]).await.unwrap().len(), 1);
}

#[tokio::test]
async fn sagas_are_listed_by_status() {
    let schema = TestSchema::new();
    let repository = schema.repository().await;
    let lease = lease();
    for (key, status) in [
        ("a", SagaStatus::Running),
        ("b", SagaStatus::Compensated),
        ("c", SagaStatus::Failed),
        ("d", SagaStatus::Running),
    ] {
        let Created::New(mut saga) = repository.create(&new_saga(key), &lease).await.unwrap()
        else {
            panic!("new saga expected");
        };
        saga.status = status;
        repository.update(&saga, &[], &lease).await.unwrap();
    }
    let keys = |sagas: Vec<SagaState>| sagas.into_iter().map(|s| s.trigger_key).collect::<Vec<_>>();
    assert_eq!(
        keys(repository.list(&[SagaStatus::Running]).await.unwrap()),
        ["a", "d"]
    );
    assert_eq!(
        keys(
            repository
                .list(&[SagaStatus::Failed, SagaStatus::Compensated])
                .await
                .unwrap()
        ),
        ["b", "c"]
    );
    assert_eq!(repository.list(&[]).await.unwrap().len(), 4);
}

#[tokio::test]
async fn a_schema_name_that_is_not_an_identifier_is_refused() {
    let error = PgSagaRepository::connect(common::postgres::DATABASE_URL, "x\"; DROP TABLE y; --")
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(error, RepositoryError::InvalidSchema(_)),
        "{error}"
    );
}

#[tokio::test]
async fn user_registration_runs_and_compensates_on_postgres() {
    let schema = TestSchema::new();
    let repository = Arc::new(schema.repository().await);
    let services = Arc::new(ExampleServices::new());
    let orchestrator = SagaOrchestrator::new(memory_bus(), repository.clone(), settings());
    orchestrator
        .register(user_registration::definition(services.clone()))
        .unwrap();

    let happy = user();
    let key = format!("signup-{}", happy.user_id);
    let StartOutcome::Started(id) = orchestrator
        .start(user_registration::SAGA, &envelope(&happy, &key))
        .await
        .unwrap()
    else {
        panic!("started expected");
    };
    let state = orchestrator.wait_finished(id, WAIT).await.unwrap();
    assert_eq!(state.status, SagaStatus::Completed, "{}", failure(&state));
    assert_eq!(
        orchestrator
            .start(user_registration::SAGA, &envelope(&happy, &key))
            .await
            .unwrap(),
        StartOutcome::Duplicate(id)
    );

    services.fail("welcome_email.send", Fault::Permanent);
    let unlucky = user();
    let StartOutcome::Started(failed_id) = orchestrator
        .start(user_registration::SAGA, &envelope(&unlucky, "unlucky"))
        .await
        .unwrap()
    else {
        panic!("started expected");
    };
    let state = orchestrator.wait_finished(failed_id, WAIT).await.unwrap();
    assert_eq!(state.status, SagaStatus::Compensated);
    let log = repository.steps(failed_id).await.unwrap();
    assert_eq!(succeeded(&log, StepPhase::Action), STEPS[..2]);
    assert_eq!(
        succeeded(&log, StepPhase::Compensation),
        [STEPS[1], STEPS[0]]
    );
    let compensated = repository.list(&[SagaStatus::Compensated]).await.unwrap();
    assert_eq!(
        compensated.iter().map(|s| s.id).collect::<Vec<_>>(),
        [failed_id]
    );
    orchestrator.shutdown().await;
}

#[tokio::test]
async fn a_conflict_and_a_lost_lease_are_reported_on_a_pool_of_one_connection() {
    let schema = TestSchema::new();
    let repository =
        PgSagaRepository::connect_with_pool_size(common::postgres::DATABASE_URL, &schema.name, 1)
            .await
            .unwrap();
    let (owner, other) = (lease(), lease());
    let Created::New(stored) = repository.create(&new_saga("k"), &owner).await.unwrap() else {
        panic!("new saga expected");
    };
    repository.update(&stored, &[], &owner).await.unwrap();
    let within = Duration::from_secs(5);
    let stale = tokio::time::timeout(within, repository.update(&stored, &[], &owner))
        .await
        .expect("no second connection is awaited")
        .unwrap_err();
    assert!(
        matches!(stale, RepositoryError::Conflict { expected: 1, .. }),
        "{stale}"
    );
    let current = repository.get(stored.id).await.unwrap().unwrap();
    let lost = tokio::time::timeout(within, repository.update(&current, &[], &other))
        .await
        .expect("no second connection is awaited")
        .unwrap_err();
    assert!(matches!(lost, RepositoryError::LeaseLost { .. }), "{lost}");
    assert!(
        repository
            .acquire(&other, &["test-saga".to_owned()], 10)
            .await
            .unwrap()
            .is_empty(),
        "the owner's lease is live"
    );
    repository.release(stored.id, owner.owner).await.unwrap();
    let taken = repository
        .acquire(&other, &["test-saga".to_owned()], 10)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(
        (taken[0].owner, taken[0].version),
        (Some(other.owner), current.version + 1)
    );
    assert!(
        repository
            .renew(&[stored.id], &owner)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        repository.renew(&[stored.id], &other).await.unwrap(),
        [stored.id]
    );
}
