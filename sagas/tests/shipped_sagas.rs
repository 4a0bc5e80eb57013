//! GDPR deletion, GDPR export and voice-model training on the in-memory bus and repository:
//! each saga's happy path, a failure at each step, and its deadline.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use event_bus_core::{DomainEvent, EventBus, Recorder};
use event_bus_sagas::shipped::gdpr_deletion::{
    self, UserDataDeleted, UserDataDeletionFailed, UserDataDeletionRequested,
};
use event_bus_sagas::shipped::gdpr_export::{
    self, UserDataExportCompleted, UserDataExportFailed, UserDataExportRequested,
};
use event_bus_sagas::shipped::voice_training::{
    self, VoiceModelTrained, VoiceModelTrainingFailed, VoiceModelTrainingStarted,
};
use event_bus_sagas::shipped::{ExampleServices, Fault};
use event_bus_sagas::{
    MemorySagaRepository, SagaDefinition, SagaOrchestrator, SagaRepository, SagaSettings,
    SagaState, SagaStatus, StartOutcome, StepPhase,
};
use personal_data::{KeyState, KeyStore, MemoryKeyStore};

const SERVICES: [&str; 3] = ["billing", "messages", "recordings"];

struct Fixture {
    bus: Arc<EventBus>,
    services: Arc<ExampleServices>,
    repository: Arc<MemorySagaRepository>,
    orchestrator: SagaOrchestrator,
}

fn fixture(
    settings: SagaSettings,
    definition: impl FnOnce(Arc<ExampleServices>) -> SagaDefinition,
) -> Fixture {
    let bus = memory_bus();
    let services = Arc::new(ExampleServices::new());
    let repository = Arc::new(MemorySagaRepository::new());
    let orchestrator = SagaOrchestrator::new(bus.clone(), repository.clone(), settings);
    orchestrator.register(definition(services.clone())).unwrap();
    Fixture {
        bus,
        services,
        repository,
        orchestrator,
    }
}

impl Fixture {
    async fn run<E: DomainEvent>(&self, saga: &str, event: &E) -> SagaState {
        let key = uuid::Uuid::now_v7().to_string();
        let StartOutcome::Started(id) = self
            .orchestrator
            .start(saga, &envelope(event, &key))
            .await
            .unwrap()
        else {
            panic!("started expected");
        };
        self.orchestrator.wait_finished(id, WAIT).await.unwrap()
    }

    async fn record<E: DomainEvent>(&self) -> Recorder {
        record(&self.bus, E::EVENT_TYPE).await
    }

    async fn compensated_steps(&self, state: &SagaState) -> Vec<String> {
        succeeded(
            &self.repository.steps(state.id).await.unwrap(),
            StepPhase::Compensation,
        )
    }
}

fn deletion_fixture(
    deadline: Duration,
) -> (Fixture, UserDataDeletionRequested, Arc<MemoryKeyStore>) {
    let keys = Arc::new(MemoryKeyStore::new());
    let f = fixture(settings(), |services| {
        gdpr_deletion::definition(services, &SERVICES, keys.clone(), deadline)
    });
    let request = UserDataDeletionRequested {
        request_id: format!("del-{}", uuid::Uuid::now_v7().simple()),
        user_id: "u-7".to_owned(),
    };
    for service in SERVICES {
        f.services.hold(&format!("{service}-data:u-7"));
    }
    (f, request, keys)
}

/// Makes the user's data key, as publishing their personal data would.
async fn key_made(keys: &MemoryKeyStore, user: &str) {
    assert!(matches!(
        keys.key_or_create(user).await.unwrap(),
        KeyState::Live(_)
    ));
}

#[tokio::test]
async fn gdpr_deletion_deletes_everywhere_and_confirms() {
    let (f, request, keys) = deletion_fixture(Duration::from_secs(30));
    key_made(&keys, "u-7").await;
    key_made(&keys, "u-8").await;
    let done = f.record::<UserDataDeleted>().await;
    let confirmations = record(&f.bus, "gdpr.data_deleted_in_service").await;
    let state = f.run(gdpr_deletion::SAGA, &request).await;
    assert_eq!(state.status, SagaStatus::Completed, "{}", failure(&state));
    assert!(f.services.facts().is_empty());
    let event = done.wait_for(1, WAIT).await.unwrap()[0]
        .decode::<UserDataDeleted>()
        .unwrap();
    assert_eq!(event.services, SERVICES);
    assert_eq!(event.request_id, request.request_id);
    let confirmed = confirmations.wait_for(3, WAIT).await.unwrap();
    assert!(confirmed.iter().all(|e| e.payload["records_deleted"] == 1));
    let steps = f.repository.steps(state.id).await.unwrap();
    let done_steps = succeeded(&steps, StepPhase::Action);
    assert_eq!(
        done_steps.last().map(String::as_str),
        Some(gdpr_deletion::FORGET_STEP),
        "forgetting runs last: {done_steps:?}"
    );
    assert!(matches!(
        keys.key("u-7").await.unwrap(),
        KeyState::Forgotten
    ));
    assert!(
        matches!(
            keys.key_or_create("u-7").await.unwrap(),
            KeyState::Forgotten
        ),
        "no new key is made for a forgotten user"
    );
    assert!(matches!(keys.key("u-8").await.unwrap(), KeyState::Live(_)));
}

#[tokio::test]
async fn gdpr_deletion_failing_at_any_service_is_reported_with_what_was_confirmed() {
    for failing in 0..SERVICES.len() {
        let (f, request, keys) = deletion_fixture(Duration::from_secs(30));
        key_made(&keys, "u-7").await;
        let failed = f.record::<UserDataDeletionFailed>().await;
        f.services
            .fail(&format!("{}.delete", SERVICES[failing]), Fault::Permanent);
        let state = f.run(gdpr_deletion::SAGA, &request).await;
        assert_eq!(state.status, SagaStatus::Compensated);
        let report = failed.wait_for(1, WAIT).await.unwrap()[0]
            .decode::<UserDataDeletionFailed>()
            .unwrap();
        assert_eq!(report.confirmed, SERVICES[..failing]);
        assert_eq!(report.unconfirmed, SERVICES[failing..]);
        assert!(
            report.reason.contains(SERVICES[failing]),
            "{}",
            report.reason
        );
        for (index, service) in SERVICES.iter().enumerate() {
            let held = f.services.has(&format!("{service}-data:u-7"));
            assert_eq!(held, index >= failing, "{service} with {failing} failing");
        }
        assert!(
            matches!(keys.key("u-7").await.unwrap(), KeyState::Live(_)),
            "the key is kept while a service has not confirmed"
        );
    }
}

#[tokio::test]
async fn gdpr_deletion_past_its_deadline_is_reported() {
    let (f, request, _keys) = deletion_fixture(Duration::from_millis(300));
    let failed = f.record::<UserDataDeletionFailed>().await;
    f.services.fail("messages.delete", Fault::Hang);
    let state = f.run(gdpr_deletion::SAGA, &request).await;
    assert_eq!(state.status, SagaStatus::Compensated);
    let report = failed.wait_for(1, WAIT).await.unwrap()[0]
        .decode::<UserDataDeletionFailed>()
        .unwrap();
    assert_eq!(report.confirmed, ["billing"]);
    assert_eq!(report.unconfirmed, ["messages", "recordings"]);
    assert!(report.reason.starts_with("timed out"), "{}", report.reason);
}

fn export_fixture() -> (Fixture, UserDataExportRequested) {
    let f = fixture(settings(), |services| {
        gdpr_export::definition(services, &SERVICES)
    });
    let request = UserDataExportRequested {
        request_id: format!("exp-{}", uuid::Uuid::now_v7().simple()),
        user_id: "u-8".to_owned(),
    };
    (f, request)
}

#[tokio::test]
async fn gdpr_export_collects_aggregates_and_links() {
    let (f, request) = export_fixture();
    let completed = f.record::<UserDataExportCompleted>().await;
    let state = f.run(gdpr_export::SAGA, &request).await;
    assert_eq!(state.status, SagaStatus::Completed, "{}", failure(&state));
    let event = completed.wait_for(1, WAIT).await.unwrap()[0]
        .decode::<UserDataExportCompleted>()
        .unwrap();
    assert_eq!(
        event.download_url,
        format!("https://exports.example.com/{}.zip", request.request_id)
    );
    assert_eq!(event.services, SERVICES);
    assert_eq!(
        f.services.facts(),
        [
            format!("archive:{}", request.request_id),
            format!("link:{}", request.request_id)
        ]
        .into_iter()
        .collect()
    );
    for service in SERVICES {
        assert_eq!(
            state.data[format!("collect_from_{service}")]["service"],
            service
        );
    }
}

#[tokio::test]
async fn gdpr_export_failing_at_each_step_removes_the_archive_and_link() {
    let operations = [
        "billing.collect",
        "messages.collect",
        "recordings.collect",
        "archive.store",
        "link.create",
    ];
    for (failing, operation) in operations.into_iter().enumerate() {
        let (f, request) = export_fixture();
        let failed = f.record::<UserDataExportFailed>().await;
        f.services.fail(operation, Fault::Permanent);
        let state = f.run(gdpr_export::SAGA, &request).await;
        assert_eq!(state.status, SagaStatus::Compensated, "{operation}");
        assert!(
            f.services.facts().is_empty(),
            "{operation}: {:?}",
            f.services.facts()
        );
        let steps: Vec<String> = SERVICES
            .iter()
            .map(|s| gdpr_export::step_name(s))
            .chain([gdpr_export::AGGREGATE.to_owned()])
            .collect();
        let mut undone = steps[..failing].to_vec();
        undone.reverse();
        assert_eq!(f.compensated_steps(&state).await, undone, "{operation}");
        let report = failed.wait_for(1, WAIT).await.unwrap()[0]
            .decode::<UserDataExportFailed>()
            .unwrap();
        assert_eq!(report.request_id, request.request_id);
    }
}

fn voice_fixture(settings: SagaSettings, min_quality: f64) -> (Fixture, VoiceModelTrainingStarted) {
    let f = fixture(settings, move |services| {
        voice_training::definition(services, min_quality)
    });
    let job = VoiceModelTrainingStarted {
        job_id: format!("job-{}", uuid::Uuid::now_v7().simple()),
        user_id: "u-9".to_owned(),
        sample_ids: vec!["s-1".to_owned(), "s-2".to_owned()],
    };
    (f, job)
}

#[tokio::test]
async fn voice_training_publishes_the_trained_model() {
    let (f, job) = voice_fixture(settings(), 0.8);
    let trained = f.record::<VoiceModelTrained>().await;
    let state = f.run(voice_training::SAGA, &job).await;
    assert_eq!(state.status, SagaStatus::Completed, "{}", failure(&state));
    let event = trained.wait_for(1, WAIT).await.unwrap()[0]
        .decode::<VoiceModelTrained>()
        .unwrap();
    assert_eq!(event.model_id, format!("model-{}", job.job_id));
    assert!((event.quality - voice_training::EXAMPLE_QUALITY).abs() < f64::EPSILON);
    assert!(
        !f.services.has(&format!("gpu:{}", job.job_id)),
        "resources released"
    );
    assert!(f.services.has(&format!("model:{}", job.job_id)));
}

async fn assert_training_undone(
    f: &Fixture,
    job: &VoiceModelTrainingStarted,
    failed: &Recorder,
) -> String {
    assert_eq!(
        f.services.facts(),
        [format!("notified:{}", job.user_id)].into_iter().collect(),
        "resources released, artifacts deleted, user notified"
    );
    let report = failed.wait_for(1, WAIT).await.unwrap()[0]
        .decode::<VoiceModelTrainingFailed>()
        .unwrap();
    assert_eq!(report.job_id, job.job_id);
    report.reason
}

#[tokio::test]
async fn voice_training_failing_at_each_step_releases_deletes_and_notifies() {
    for (failing, operation) in ["audio.process", "model.train", "model.validate"]
        .into_iter()
        .enumerate()
    {
        let (f, job) = voice_fixture(settings(), 0.8);
        let failed = f.record::<VoiceModelTrainingFailed>().await;
        f.services.fail(operation, Fault::Permanent);
        let state = f.run(voice_training::SAGA, &job).await;
        assert_eq!(state.status, SagaStatus::Compensated, "{operation}");
        let mut undone: Vec<&str> = voice_training::STEPS[..failing].to_vec();
        undone.reverse();
        assert_eq!(f.compensated_steps(&state).await, undone, "{operation}");
        let reason = assert_training_undone(&f, &job, &failed).await;
        assert!(reason.contains(operation), "{reason}");
    }
}

#[tokio::test]
async fn voice_training_below_the_quality_bar_fails() {
    let (f, job) = voice_fixture(settings(), 0.95);
    let failed = f.record::<VoiceModelTrainingFailed>().await;
    let state = f.run(voice_training::SAGA, &job).await;
    assert_eq!(state.status, SagaStatus::Compensated);
    let reason = assert_training_undone(&f, &job, &failed).await;
    assert!(
        reason.contains("model quality 0.90 is below the required 0.95"),
        "{reason}"
    );
}

#[tokio::test]
async fn voice_training_that_hangs_past_the_timeout_releases_its_resources() {
    let (f, job) = voice_fixture(
        SagaSettings {
            timeout: Duration::from_millis(300),
            ..settings()
        },
        0.8,
    );
    let failed = f.record::<VoiceModelTrainingFailed>().await;
    f.services.fail("model.train", Fault::Hang);
    let state = f.run(voice_training::SAGA, &job).await;
    assert_eq!(state.status, SagaStatus::Compensated);
    assert_eq!(
        f.compensated_steps(&state).await,
        ["train_model", "process_audio"]
    );
    let reason = assert_training_undone(&f, &job, &failed).await;
    assert!(reason.starts_with("timed out"), "{reason}");
}
