//! An orchestrator process for the many-instances test: the three-step saga `fleet` on
//! PostgreSQL and the broker `EVENT_BUS_TYPE` names, run until its standard input closes.
//!
//! ```text
//! saga-fleet-worker            (settings from the environment: SAGA_*, EVENT_BUS_*, REDIS_*)
//! ```
//!
//! Subscribes to `fleet.requested`, calls `resume()`, and prints `ready <n>` with the number of
//! sagas `resume()` took; then `call <saga-id> <step> <action|compensation> <attempt>` as each
//! service call begins. Each call takes `FLEET_STEP_MS` milliseconds (default 20). The trigger
//! payload's `n` scripts faults: `reserve` fails transiently on its first attempt when
//! `n % 7 == 1`, and `charge` fails permanently when `n % 10 == 3` (the saga is compensated).

use std::error::Error;
use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use event_bus_core::BusSettings;
use event_bus_core::telemetry::logging::init_logging;
use event_bus_sagas::{
    PgSagaRepository, SagaDefinition, SagaOrchestrator, SagaSettings, StepContext, StepError,
    StepPhase, step_fn,
};

/// The saga's name and trigger.
const SAGA: &str = "fleet";
const TRIGGER: &str = "fleet.requested";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("saga-fleet-worker: {error}");
            ExitCode::FAILURE
        }
    }
}

/// One service call: printed, then `pause` long, then the scripted fault if any.
async fn call(ctx: StepContext, pause: Duration) -> Result<(), StepError> {
    let phase = match ctx.phase {
        StepPhase::Action => "action",
        StepPhase::Compensation => "compensation",
    };
    println!("call {} {} {phase} {}", ctx.saga_id, ctx.step, ctx.attempt);
    tokio::time::sleep(pause).await;
    if ctx.phase == StepPhase::Compensation {
        return Ok(());
    }
    let n = ctx.data["trigger"]["n"].as_u64().unwrap_or_default();
    match ctx.step.as_str() {
        "reserve" if n % 7 == 1 && ctx.attempt == 1 => Err(StepError::transient("busy")),
        "charge" if n % 10 == 3 => Err(StepError::permanent("declined")),
        _ => Ok(()),
    }
}

fn definition(pause: Duration) -> SagaDefinition {
    ["reserve", "charge", "ship"].into_iter().fold(
        SagaDefinition::new(SAGA, TRIGGER),
        |saga, name| {
            saga.step(
                name,
                step_fn(
                    move |ctx| async move {
                        call(ctx, pause).await?;
                        Ok(serde_json::Value::Null)
                    },
                    move |ctx| call(ctx, pause),
                ),
            )
        },
    )
}

async fn run() -> Result<(), Box<dyn Error>> {
    init_logging("warn")?;
    let pause = Duration::from_millis(
        std::env::var("FLEET_STEP_MS")
            .ok()
            .and_then(|ms| ms.parse().ok())
            .unwrap_or(20),
    );
    let settings = SagaSettings::from_env()?;
    let repository = Arc::new(PgSagaRepository::from_settings(&settings).await?);
    let bus = Arc::new(event_bus_brokers::connect(BusSettings::from_env()?).await?);
    let orchestrator = SagaOrchestrator::new(bus.clone(), repository, settings);
    orchestrator.register(definition(pause))?;
    orchestrator.subscribe().await?;
    let resumed = orchestrator.resume().await?;
    println!("ready {}", resumed.len());

    let (closed, stdin_closed) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        let _ = closed.send(());
    });
    let _ = stdin_closed.await;
    orchestrator.shutdown().await;
    bus.shutdown().await?;
    Ok(())
}
