//! `eventbus`: the command-line tool of the event bus.

mod args;
mod commands;
mod error;
mod progress;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};
use error::CliError;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let settings = event_bus_core::BusSettings::from_env()?;
    let context = commands::Context::new(settings, cli.schema)?;
    match cli.command {
        Command::Publish(args) => commands::publish::run(&context, args).await,
        Command::Tail(args) => commands::tail::run(&context, args).await,
        Command::Setup(args) => commands::setup::run(&context, args).await,
        Command::Dlq(command) => commands::dlq::run(&context, command).await,
        Command::Replay(args) => commands::replay::run(&context, args).await,
        Command::Store(command) => commands::store::run(&context, command).await,
        Command::Sagas(command) => commands::sagas::run(command).await,
    }
}

/// The error and its causes on one line, each cause once.
fn one_line(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line.replace('\n', " ")
}
