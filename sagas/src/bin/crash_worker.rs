//! A worker process for the crash-and-resume tests: runs the user-registration saga against
//! PostgreSQL and prints what it does, so a test can kill it mid-saga and start it again.
//!
//! ```text
//! saga-crash-worker <database-url> <schema> start <user-id> [<operation-that-hangs>]
//! saga-crash-worker <database-url> <schema> resume [<operation-that-hangs>]
//! ```
//!
//! Prints `started <saga-id>`, `call <operation>` for each service call, `resumed <saga-id>`,
//! and `finished <saga-id> <status>` once a saga ends. Saga settings come from the
//! environment (`SAGA_TIMEOUT_SECONDS`, ...).

use std::error::Error;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use event_bus_core::{BusSettings, EventBus, EventEnvelope, InMemoryBroker};
use event_bus_sagas::shipped::user_registration::{self, UserRegistered};
use event_bus_sagas::shipped::{ExampleServices, Fault};
use event_bus_sagas::{PgSagaRepository, SagaOrchestrator, SagaSettings, StartOutcome};

const WAIT: Duration = Duration::from_secs(120);

#[tokio::main]
async fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("saga-crash-worker: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Vec<String>) -> Result<(), Box<dyn Error>> {
    let usage = "usage: saga-crash-worker <database-url> <schema> (start <user-id> | resume) [<operation-that-hangs>]";
    let [url, schema, command, rest @ ..] = args.as_slice() else {
        return Err(usage.into());
    };
    let repository = Arc::new(PgSagaRepository::connect(url, schema).await?);
    let bus = Arc::new(EventBus::new(
        Arc::new(InMemoryBroker::new()),
        BusSettings::default(),
    ));
    let services = Arc::new(ExampleServices::printing());
    let orchestrator = SagaOrchestrator::new(bus, repository, SagaSettings::from_env()?);
    orchestrator.register(user_registration::definition(services.clone()))?;

    let ids = match (command.as_str(), rest) {
        ("start", [user_id, hang @ ..]) => {
            if let [operation] = hang {
                services.fail(operation, Fault::Hang);
            }
            let user = UserRegistered {
                user_id: user_id.clone(),
                email: format!("{user_id}@example.com"),
                name: "Crash Test".to_owned(),
            };
            let event = EventEnvelope::from_event(&user)?
                .idempotency_key(format!("signup-{user_id}"))
                .build();
            let outcome = orchestrator.start(user_registration::SAGA, &event).await?;
            let (StartOutcome::Started(id) | StartOutcome::Duplicate(id)) = outcome else {
                return Err(format!("saga not started: {outcome:?}").into());
            };
            println!("started {id}");
            vec![id]
        }
        ("resume", hang) => {
            if let [operation] = hang {
                services.fail(operation, Fault::Hang);
            }
            let ids = orchestrator.resume().await?;
            for id in &ids {
                println!("resumed {id}");
            }
            ids
        }
        _ => return Err(usage.into()),
    };
    for id in ids {
        let state = orchestrator.wait_finished(id, WAIT).await?;
        println!("finished {id} {}", state.status);
    }
    orchestrator.shutdown().await;
    Ok(())
}
