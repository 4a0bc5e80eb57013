//! Sagas on a real broker: Redis Streams at 127.0.0.1:6379 through `event_bus_brokers::connect`
//! with EVENT_BUS_TYPE=redis, a fresh topic prefix per test. Triggers, duplicates, replays and
//! the events the sagas publish all cross the wire.

mod common;

use std::sync::Arc;

use common::*;
use event_bus_core::{BusSettings, DomainEvent, EventBus};
use event_bus_sagas::shipped::user_registration::{
    self, UserOnboardingCompleted, UserProfileCreated, UserRegistered, UserRegistrationFailed,
};
use event_bus_sagas::shipped::voice_training::{
    self, VoiceModelTrained, VoiceModelTrainingStarted,
};
use event_bus_sagas::shipped::{ExampleServices, Fault};
use event_bus_sagas::{
    MemorySagaRepository, SagaOrchestrator, SagaRepository, SagaStatus, saga_id,
};

async fn redis_bus() -> Arc<EventBus> {
    let prefix = format!("saga-test-{}", uuid::Uuid::now_v7().simple());
    let settings = BusSettings::from_vars([
        ("EVENT_BUS_TYPE", "redis"),
        ("REDIS_EVENT_URL", "redis://127.0.0.1:6379"),
        ("EVENT_BUS_TOPIC_PREFIX", prefix.as_str()),
    ])
    .unwrap();
    let bus = event_bus_brokers::connect(settings)
        .await
        .expect("Redis on 127.0.0.1:6379 (scripts/services.sh ensure_redis)");
    assert_eq!(bus.broker().name(), "redis");
    Arc::new(bus)
}

struct Fixture {
    bus: Arc<EventBus>,
    services: Arc<ExampleServices>,
    repository: Arc<MemorySagaRepository>,
    orchestrator: SagaOrchestrator,
}

async fn fixture() -> Fixture {
    let bus = redis_bus().await;
    let services = Arc::new(ExampleServices::new());
    let repository = Arc::new(MemorySagaRepository::new());
    let orchestrator = SagaOrchestrator::new(bus.clone(), repository.clone(), settings());
    orchestrator
        .register(user_registration::definition(services.clone()))
        .unwrap();
    orchestrator
        .register(voice_training::definition(services.clone(), 0.5))
        .unwrap();
    Fixture {
        bus,
        services,
        repository,
        orchestrator,
    }
}

impl Fixture {
    async fn stop(self) {
        self.orchestrator.shutdown().await;
        self.bus.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn a_trigger_on_redis_runs_the_saga_once_and_its_events_arrive() {
    let f = fixture().await;
    let created = record(&f.bus, UserProfileCreated::EVENT_TYPE).await;
    let completed = record(&f.bus, UserOnboardingCompleted::EVENT_TYPE).await;
    f.orchestrator.subscribe().await.unwrap();

    let user = user();
    let key = format!("signup-{}", user.user_id);
    let event = envelope(&user, &key);
    f.bus.publish(&event).await.unwrap();
    f.bus.publish(&envelope(&user, &key)).await.unwrap();
    f.bus.publish(&event).await.unwrap();

    let id = saga_id(user_registration::SAGA, &key);
    let state = f.orchestrator.wait_finished(id, WAIT).await.unwrap();
    assert_eq!(state.status, SagaStatus::Completed, "{}", failure(&state));
    let done = completed.wait_for(1, WAIT).await.unwrap();
    assert_eq!(done[0].correlation_id, event.correlation_id);
    assert_eq!(
        created.wait_for(1, WAIT).await.unwrap()[0].aggregate_id,
        user.user_id
    );
    let topic = f.bus.topics().topic(UserRegistered::EVENT_TYPE);
    let triggers = f.orchestrator.subscriptions();
    let registrations = triggers
        .iter()
        .find(|s| s.config().topic == topic)
        .expect("the saga subscribed to its trigger");
    registrations
        .stats()
        .wait_until(WAIT, |s| s.handled == 3)
        .await
        .unwrap();
    assert_eq!(f.repository.list(&[]).await.unwrap().len(), 1);
    assert_eq!(f.services.call_count("profile.create"), 1);
    f.stop().await;
}

#[tokio::test]
async fn a_failing_step_on_redis_compensates_and_reports() {
    let f = fixture().await;
    let failed = record(&f.bus, UserRegistrationFailed::EVENT_TYPE).await;
    f.orchestrator.subscribe().await.unwrap();
    f.services.fail("analytics.record", Fault::Permanent);
    let user = user();
    let key = format!("signup-{}", user.user_id);
    f.bus.publish(&envelope(&user, &key)).await.unwrap();

    let id = saga_id(user_registration::SAGA, &key);
    let state = f.orchestrator.wait_finished(id, WAIT).await.unwrap();
    assert_eq!(state.status, SagaStatus::Compensated);
    assert!(f.services.facts().is_empty());
    let report = failed.wait_for(1, WAIT).await.unwrap()[0]
        .decode::<UserRegistrationFailed>()
        .unwrap();
    assert!(report.reason.contains("analytics"), "{}", report.reason);
    f.stop().await;
}

#[tokio::test]
async fn a_replayed_trigger_on_redis_starts_nothing() {
    let f = fixture().await;
    let seen = record(&f.bus, VoiceModelTrainingStarted::EVENT_TYPE).await;
    let trained = record(&f.bus, VoiceModelTrained::EVENT_TYPE).await;
    f.orchestrator.subscribe().await.unwrap();
    let job = |n: u32| VoiceModelTrainingStarted {
        job_id: format!("job-{n}-{}", uuid::Uuid::now_v7().simple()),
        user_id: "u-1".to_owned(),
        sample_ids: vec!["s-1".to_owned()],
    };
    let replayed = envelope(&job(1), "replayed-job").into_replay();
    f.bus.publish(&replayed).await.unwrap();
    let fresh = job(2);
    f.bus.publish(&envelope(&fresh, "fresh-job")).await.unwrap();

    seen.wait_for(2, WAIT).await.unwrap();
    let id = saga_id(voice_training::SAGA, "fresh-job");
    let state = f.orchestrator.wait_finished(id, WAIT).await.unwrap();
    assert_eq!(state.status, SagaStatus::Completed, "{}", failure(&state));
    let model = trained.wait_for(1, WAIT).await.unwrap()[0]
        .decode::<VoiceModelTrained>()
        .unwrap();
    assert_eq!(model.job_id, fresh.job_id);
    let sagas = f.repository.list(&[]).await.unwrap();
    assert_eq!(sagas.iter().map(|s| s.id).collect::<Vec<_>>(), [id]);
    f.stop().await;
}
