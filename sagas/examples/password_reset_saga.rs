//! The password-reset saga: a token is issued and stored, the e-mail with the link is sent, and
//! the saga waits until the token is used. The first user follows the link: the reset
//! completes. The second lets the token expire: it is revoked and the user told. For the third,
//! the e-mail service fails for good: the token is revoked before anyone could use it.
//!
//! ```text
//! cargo run -p event-bus-sagas --example password_reset_saga
//! ```

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use event_bus_core::{DomainEvent, EventEnvelope, HandlerError, handler_fn};
use event_bus_sagas::shipped::password_reset::{self, events::*};
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

fn request(user: &str, outcome: &str) -> PasswordResetRequested {
    PasswordResetRequested {
        request_id: format!("reset-{user}-{outcome}"),
        user_id: user.to_owned(),
    }
}

async fn run() -> ExampleResult {
    let bus = connect().await?;
    let services = Arc::new(ExampleServices::new());
    let mut settings = SagaSettings::from_env()?;
    // The last step asks for the token's status until it is used or expired; the token's
    // validity (the saga's deadline) bounds the wait, not the attempts.
    settings.max_step_attempts = u32::MAX;
    settings.retry.max_backoff = Duration::from_millis(200);
    let orchestrator =
        SagaOrchestrator::new(bus.clone(), Arc::new(MemorySagaRepository::new()), settings);
    orchestrator.register(password_reset::definition(
        services.clone(),
        Duration::from_secs(30),
    ))?;

    // The users' side: whoever receives the link uses it, or lets it expire.
    let users = {
        let services = services.clone();
        handler_fn(move |event: EventEnvelope| {
            let services = services.clone();
            async move {
                let sent: PasswordResetEmailSent =
                    event.decode().map_err(HandlerError::permanent)?;
                let outcome = if sent.request_id.ends_with("-uses-link") {
                    "reset_consumed"
                } else {
                    "reset_expired"
                };
                services.hold(&format!("{outcome}:{}", sent.request_id));
                Ok(())
            }
        })
    };
    bus.subscribe(
        bus.subscription(PasswordResetEmailSent::EVENT_TYPE, "example-users"),
        users,
    )
    .await?;
    let mut log = EventLog::subscribe(
        &bus,
        &[
            PasswordResetTokenIssued::EVENT_TYPE,
            PasswordResetEmailSent::EVENT_TYPE,
            PasswordResetCompleted::EVENT_TYPE,
            PasswordResetFailed::EVENT_TYPE,
        ],
    )
    .await?;
    orchestrator.subscribe().await?;

    let first = request("u-1", "uses-link");
    let state = run_saga(
        &orchestrator,
        password_reset::SAGA,
        &first,
        &first.request_id,
    )
    .await?;
    expect(&state, SagaStatus::Completed)?;
    log.show(3).await?;

    let second = request("u-2", "lets-it-expire");
    let state = run_saga(
        &orchestrator,
        password_reset::SAGA,
        &second,
        &second.request_id,
    )
    .await?;
    expect(&state, SagaStatus::Compensated)?;
    log.show(3).await?;

    services.fail("email.send_reset", Fault::Permanent);
    let third = request("u-3", "mail-down");
    let state = run_saga(
        &orchestrator,
        password_reset::SAGA,
        &third,
        &third.request_id,
    )
    .await?;
    expect(&state, SagaStatus::Compensated)?;
    log.show(2).await?;
    for fact in [
        "reset_token:reset-u-1-uses-link",
        "reset_token:reset-u-2-lets-it-expire",
        "reset_token:reset-u-3-mail-down",
        "notified:u-2",
        "notified:u-3",
    ] {
        println!(
            "{fact:<40} {}",
            if services.has(fact) { "held" } else { "gone" }
        );
    }

    orchestrator.shutdown().await;
    bus.shutdown().await?;
    Ok(())
}
