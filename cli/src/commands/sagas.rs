//! `eventbus sagas list|show`: saga status from the PostgreSQL saga store.

use event_bus_sagas::{
    PgSagaRepository, RepositoryError, SagaRepository, SagaSettings, SagaState, StepRecord,
};

use crate::args::SagasCommand;
use crate::error::CliError;

/// Lists sagas or shows one with its step log.
pub async fn run(command: SagasCommand) -> Result<(), CliError> {
    let settings = SagaSettings::from_env()?;
    let repository = PgSagaRepository::from_settings(&settings).await?;
    match command {
        SagasCommand::List { statuses } => {
            let sagas = repository.list(&statuses).await?;
            println!(
                "{:<36}  {:<12}  {:<24}  {:<25}  steps",
                "id", "status", "saga", "started"
            );
            for saga in &sagas {
                println!(
                    "{:<36}  {:<12}  {:<24}  {:<25}  {}",
                    saga.id,
                    saga.status,
                    saga.saga_type,
                    saga.created_at.to_rfc3339(),
                    saga.completed_steps
                );
            }
            println!("{} saga(s)", sagas.len());
        }
        SagasCommand::Show { id } => {
            let saga = repository
                .get(id)
                .await?
                .ok_or(RepositoryError::NotFound(id))?;
            print_saga(&saga);
            for record in repository.steps(id).await? {
                print_step(&record);
            }
        }
    }
    Ok(())
}

fn print_saga(saga: &SagaState) {
    println!("id: {}", saga.id);
    println!("saga: {}", saga.saga_type);
    println!("status: {}", saga.status);
    println!("trigger: {}", saga.trigger_key);
    println!("correlation id: {}", saga.correlation_id);
    println!("completed steps: {}", saga.completed_steps);
    println!("failure: {}", saga.failure.as_deref().unwrap_or("-"));
    println!("started: {}", saga.created_at.to_rfc3339());
    println!("updated: {}", saga.updated_at.to_rfc3339());
    println!("deadline: {}", saga.deadline.to_rfc3339());
    println!("steps:");
}

fn print_step(record: &StepRecord) {
    println!(
        "  {} #{} {} {} attempt {} {}{}",
        record.at.to_rfc3339(),
        record.step_index,
        record.step,
        record.phase.as_str(),
        record.attempt,
        record.outcome.as_str(),
        record
            .error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    );
}
