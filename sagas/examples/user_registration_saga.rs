//! The user-registration saga on the bus `EVENT_BUS_TYPE` selects: a `user.registered` event
//! starts it; the steps create the profile, store default preferences, send the welcome
//! e-mail and record analytics. A second user's analytics fails for good, so that saga
//! compensates the three completed steps in reverse. A duplicate trigger starts nothing.
//!
//! ```text
//! cargo run -p event-bus-sagas --example user_registration_saga
//! ```

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;
use std::sync::Arc;

use common::*;
use event_bus_core::DomainEvent;
use event_bus_sagas::shipped::user_registration::{self, events::*};
use event_bus_sagas::shipped::{ExampleServices, Fault};
use event_bus_sagas::{MemorySagaRepository, SagaOrchestrator, SagaSettings, SagaStatus};

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> ExampleResult {
    let bus = connect().await?;
    let services = Arc::new(ExampleServices::new());
    let orchestrator = SagaOrchestrator::new(
        bus.clone(),
        Arc::new(MemorySagaRepository::new()),
        SagaSettings::from_env()?,
    );
    orchestrator.register(user_registration::definition(services.clone()))?;
    let mut log = EventLog::subscribe(
        &bus,
        &[
            UserProfileCreated::EVENT_TYPE,
            UserPreferencesInitialized::EVENT_TYPE,
            WelcomeEmailSent::EVENT_TYPE,
            UserOnboardingCompleted::EVENT_TYPE,
            UserProfileDeleted::EVENT_TYPE,
            UserRegistrationFailed::EVENT_TYPE,
        ],
    )
    .await?;
    orchestrator.subscribe().await?;

    let ada = UserRegistered {
        user_id: "u-1".into(),
        email: "ada@example.com".into(),
        name: "Ada Lovelace".into(),
    };
    let state = run_saga(&orchestrator, user_registration::SAGA, &ada, "signup-u-1").await?;
    expect(&state, SagaStatus::Completed)?;
    log.show(4).await?;
    show_duplicate(&orchestrator, user_registration::SAGA, &ada, "signup-u-1").await?;

    services.fail("analytics.record", Fault::Permanent);
    let grace = UserRegistered {
        user_id: "u-2".into(),
        email: "grace@example.com".into(),
        name: "Grace Hopper".into(),
    };
    let state = run_saga(&orchestrator, user_registration::SAGA, &grace, "signup-u-2").await?;
    expect(&state, SagaStatus::Compensated)?;
    log.show(5).await?;

    orchestrator.shutdown().await;
    bus.shutdown().await?;
    Ok(())
}
