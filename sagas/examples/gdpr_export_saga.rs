//! The GDPR data-export saga: collect the user's data from billing, messages and recordings,
//! aggregate it into an archive, create a download link, publish `gdpr.export_completed`. A
//! second export fails to create its link (after two transient failures, a permanent one), so
//! the archive is deleted and `gdpr.export_failed` published.
//!
//! ```text
//! cargo run -p event-bus-sagas --example gdpr_export_saga
//! ```

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;
use std::sync::Arc;

use common::*;
use event_bus_core::DomainEvent;
use event_bus_sagas::shipped::gdpr_export::{self, events::*};
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

fn request(user: &str) -> UserDataExportRequested {
    UserDataExportRequested {
        request_id: format!("export-{user}"),
        user_id: user.to_owned(),
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
    orchestrator.register(gdpr_export::definition(
        services.clone(),
        &["billing", "messages", "recordings"],
    ))?;
    let mut log = EventLog::subscribe(
        &bus,
        &[
            UserDataExportCompleted::EVENT_TYPE,
            UserDataExportFailed::EVENT_TYPE,
        ],
    )
    .await?;
    orchestrator.subscribe().await?;

    let state = run_saga(
        &orchestrator,
        gdpr_export::SAGA,
        &request("u-1"),
        "export-u-1",
    )
    .await?;
    expect(&state, SagaStatus::Completed)?;
    log.show(1).await?;

    services.fail("link.create", Fault::Permanent);
    let state = run_saga(
        &orchestrator,
        gdpr_export::SAGA,
        &request("u-2"),
        "export-u-2",
    )
    .await?;
    expect(&state, SagaStatus::Compensated)?;
    log.show(1).await?;
    println!("archives and links left: {:?}", services.facts());

    orchestrator.shutdown().await;
    bus.shutdown().await?;
    Ok(())
}
