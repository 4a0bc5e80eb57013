//! The password-reset saga on the in-memory bus and repository: the token used, the token
//! expired, the e-mail failing, and the deadline passing with the token unused.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use event_bus_core::{DomainEvent, EventBus, Recorder};
use event_bus_sagas::shipped::password_reset::{
    self, PasswordResetCompleted, PasswordResetEmailSent, PasswordResetFailed,
    PasswordResetRequested, PasswordResetTokenIssued,
};
use event_bus_sagas::shipped::{ExampleServices, Fault};
use event_bus_sagas::{
    MemorySagaRepository, SagaOrchestrator, SagaState, SagaStatus, StartOutcome,
};

struct Fixture {
    bus: Arc<EventBus>,
    services: Arc<ExampleServices>,
    orchestrator: SagaOrchestrator,
    request: PasswordResetRequested,
}

/// The saga with a token valid for `validity`, asking for its status every 5 to 20 ms.
fn fixture(validity: Duration) -> Fixture {
    let bus = memory_bus();
    let services = Arc::new(ExampleServices::new());
    let mut settings = settings();
    settings.max_step_attempts = u32::MAX;
    let orchestrator =
        SagaOrchestrator::new(bus.clone(), Arc::new(MemorySagaRepository::new()), settings);
    orchestrator
        .register(password_reset::definition(services.clone(), validity))
        .unwrap();
    let request = PasswordResetRequested {
        request_id: format!("reset-{}", uuid::Uuid::now_v7().simple()),
        user_id: "u-5".to_owned(),
    };
    Fixture {
        bus,
        services,
        orchestrator,
        request,
    }
}

impl Fixture {
    async fn start(&self) -> uuid::Uuid {
        let key = self.request.request_id.clone();
        let StartOutcome::Started(id) = self
            .orchestrator
            .start(password_reset::SAGA, &envelope(&self.request, &key))
            .await
            .unwrap()
        else {
            panic!("started expected");
        };
        id
    }

    async fn finish(&self, id: uuid::Uuid) -> SagaState {
        self.orchestrator.wait_finished(id, WAIT).await.unwrap()
    }

    async fn record<E: DomainEvent>(&self) -> Recorder {
        record(&self.bus, E::EVENT_TYPE).await
    }

    fn fact(&self, kind: &str) -> String {
        format!("{kind}:{}", self.request.request_id)
    }
}

#[tokio::test]
async fn a_used_token_completes_the_reset() {
    let f = fixture(Duration::from_secs(60));
    let issued = f.record::<PasswordResetTokenIssued>().await;
    let sent = f.record::<PasswordResetEmailSent>().await;
    let completed = f.record::<PasswordResetCompleted>().await;
    let id = f.start().await;
    sent.wait_for(1, WAIT).await.unwrap();
    assert!(f.services.has(&f.fact("reset_token")));
    assert!(f.services.has(&f.fact("reset_email")));
    // The user follows the link while the saga waits.
    f.services.hold(&f.fact("reset_consumed"));
    let state = f.finish(id).await;
    assert_eq!(state.status, SagaStatus::Completed, "{}", failure(&state));
    let event = completed.wait_for(1, WAIT).await.unwrap()[0]
        .decode::<PasswordResetCompleted>()
        .unwrap();
    assert_eq!(event.request_id, f.request.request_id);
    let token = issued.wait_for(1, WAIT).await.unwrap()[0]
        .decode::<PasswordResetTokenIssued>()
        .unwrap();
    assert_eq!(token.valid_for_seconds, 60);
    assert_eq!(f.services.call_count("token.revoke"), 0);
    assert_eq!(f.services.call_count("user.notify"), 0);
}

#[tokio::test]
async fn an_expired_token_is_revoked_and_the_user_told() {
    let f = fixture(Duration::from_secs(60));
    let sent = f.record::<PasswordResetEmailSent>().await;
    let failed = f.record::<PasswordResetFailed>().await;
    let id = f.start().await;
    sent.wait_for(1, WAIT).await.unwrap();
    f.services.hold(&f.fact("reset_expired"));
    let state = f.finish(id).await;
    assert_eq!(state.status, SagaStatus::Compensated);
    assert!(!f.services.has(&f.fact("reset_token")), "token revoked");
    assert!(f.services.has("notified:u-5"));
    let report = failed.wait_for(1, WAIT).await.unwrap()[0]
        .decode::<PasswordResetFailed>()
        .unwrap();
    assert!(
        report.reason.contains("expired unused"),
        "{}",
        report.reason
    );
}

#[tokio::test]
async fn a_failed_email_revokes_the_token_and_tells_no_one() {
    let f = fixture(Duration::from_secs(60));
    let failed = f.record::<PasswordResetFailed>().await;
    f.services.fail("email.send_reset", Fault::Permanent);
    let state = f.finish(f.start().await).await;
    assert_eq!(state.status, SagaStatus::Compensated);
    assert!(!f.services.has(&f.fact("reset_token")), "token revoked");
    assert_eq!(
        f.services.call_count("user.notify"),
        0,
        "no e-mail went out, so there is nothing to take back"
    );
    let report = failed.wait_for(1, WAIT).await.unwrap()[0]
        .decode::<PasswordResetFailed>()
        .unwrap();
    assert!(report.reason.contains("send_email"), "{}", report.reason);
}

#[tokio::test]
async fn a_token_unused_past_its_validity_is_revoked_at_the_deadline() {
    let f = fixture(Duration::from_millis(400));
    let failed = f.record::<PasswordResetFailed>().await;
    let state = f.finish(f.start().await).await;
    assert_eq!(state.status, SagaStatus::Compensated);
    assert!(!f.services.has(&f.fact("reset_token")), "token revoked");
    assert!(f.services.has("notified:u-5"));
    let report = failed.wait_for(1, WAIT).await.unwrap()[0]
        .decode::<PasswordResetFailed>()
        .unwrap();
    assert!(report.reason.starts_with("timed out"), "{}", report.reason);
}
