//! The GDPR data-deletion saga: billing, messages and recordings each delete the user's data
//! and confirm, then the user's data key is forgotten. For a second user, recordings fails for good; the failure report names the
//! services that confirmed and the one that did not. A third request hangs in messages past
//! the deadline and is reported the same way.
//!
//! ```text
//! cargo run -p event-bus-sagas --example gdpr_deletion_saga
//! ```

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use event_bus_core::DomainEvent;
use event_bus_sagas::shipped::gdpr_deletion::{self, events::*};
use event_bus_sagas::shipped::{ExampleServices, Fault};
use event_bus_sagas::{MemorySagaRepository, SagaOrchestrator, SagaSettings, SagaStatus};
use personal_data::{KeyState, KeyStore, MemoryKeyStore};

const SERVICES: [&str; 3] = ["billing", "messages", "recordings"];

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

fn request(user: &str) -> UserDataDeletionRequested {
    UserDataDeletionRequested {
        request_id: format!("erase-{user}"),
        user_id: user.to_owned(),
    }
}

async fn run() -> ExampleResult {
    let bus = connect().await?;
    let services = Arc::new(ExampleServices::new());
    let keys = Arc::new(MemoryKeyStore::new());
    for user in ["u-1", "u-2", "u-3"] {
        for service in SERVICES {
            services.hold(&format!("{service}-data:{user}"));
        }
        keys.key_or_create(user).await?;
    }
    let orchestrator = SagaOrchestrator::new(
        bus.clone(),
        Arc::new(MemorySagaRepository::new()),
        SagaSettings::from_env()?,
    );
    let deadline = Duration::from_secs(2);
    orchestrator.register(gdpr_deletion::definition(
        services.clone(),
        &SERVICES,
        keys.clone(),
        deadline,
    ))?;
    let mut log = EventLog::subscribe(
        &bus,
        &[
            UserDataDeletedInService::EVENT_TYPE,
            UserDataDeleted::EVENT_TYPE,
            UserDataDeletionFailed::EVENT_TYPE,
        ],
    )
    .await?;
    orchestrator.subscribe().await?;

    let state = run_saga(
        &orchestrator,
        gdpr_deletion::SAGA,
        &request("u-1"),
        "erase-u-1",
    )
    .await?;
    expect(&state, SagaStatus::Completed)?;
    log.show(4).await?;
    for user in ["u-1", "u-2"] {
        let state = match keys.key(user).await? {
            KeyState::Live(_) => "live",
            KeyState::Forgotten => "forgotten",
            KeyState::Absent => "absent",
        };
        println!("data key of {user}: {state}");
    }

    services.fail("recordings.delete", Fault::Permanent);
    let state = run_saga(
        &orchestrator,
        gdpr_deletion::SAGA,
        &request("u-2"),
        "erase-u-2",
    )
    .await?;
    expect(&state, SagaStatus::Compensated)?;
    log.show(3).await?;

    println!("(messages hangs; the deadline is {deadline:?})");
    services.heal("recordings.delete");
    services.fail("messages.delete", Fault::Hang);
    let state = run_saga(
        &orchestrator,
        gdpr_deletion::SAGA,
        &request("u-3"),
        "erase-u-3",
    )
    .await?;
    expect(&state, SagaStatus::Compensated)?;
    log.show(2).await?;

    orchestrator.shutdown().await;
    bus.shutdown().await?;
    Ok(())
}
