//! The voice-model training saga: `voice.model_training_started` starts it; process audio,
//! train, validate quality, publish `voice.model_trained`. A second job's training fails twice
//! transiently and is retried with backoff. A third job hangs in training past the saga
//! timeout: the GPU is released, the artifacts deleted, the user notified, and
//! `voice.model_training_failed` published.
//!
//! ```text
//! cargo run -p event-bus-sagas --example voice_training_saga
//! ```

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use event_bus_core::DomainEvent;
use event_bus_sagas::shipped::voice_training::{self, events::*};
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

fn job(n: u32) -> VoiceModelTrainingStarted {
    VoiceModelTrainingStarted {
        job_id: format!("job-{n}"),
        user_id: format!("u-{n}"),
        sample_ids: vec![format!("sample-{n}-a"), format!("sample-{n}-b")],
    }
}

async fn run() -> ExampleResult {
    let bus = connect().await?;
    let services = Arc::new(ExampleServices::new());
    let settings = SagaSettings {
        timeout: Duration::from_secs(2),
        ..SagaSettings::from_env()?
    };
    println!("saga timeout: {:?}", settings.timeout);
    let orchestrator =
        SagaOrchestrator::new(bus.clone(), Arc::new(MemorySagaRepository::new()), settings);
    orchestrator.register(voice_training::definition(services.clone(), 0.8))?;
    let mut log = EventLog::subscribe(
        &bus,
        &[
            VoiceModelTrained::EVENT_TYPE,
            VoiceModelTrainingFailed::EVENT_TYPE,
        ],
    )
    .await?;
    orchestrator.subscribe().await?;

    let state = run_saga(&orchestrator, voice_training::SAGA, &job(1), "job-1").await?;
    expect(&state, SagaStatus::Completed)?;
    log.show(1).await?;

    services.fail("model.train", Fault::Transient(2));
    let state = run_saga(&orchestrator, voice_training::SAGA, &job(2), "job-2").await?;
    expect(&state, SagaStatus::Completed)?;
    log.show(1).await?;

    services.fail("model.train", Fault::Hang);
    let state = run_saga(&orchestrator, voice_training::SAGA, &job(3), "job-3").await?;
    expect(&state, SagaStatus::Compensated)?;
    log.show(1).await?;
    let held: Vec<String> = services
        .facts()
        .into_iter()
        .filter(|f| f.ends_with("job-3") || f.ends_with("u-3"))
        .collect();
    println!("job-3 leftovers: {held:?}");

    orchestrator.shutdown().await;
    bus.shutdown().await?;
    Ok(())
}
