//! `eventbus store stats`.

use event_store::EventStore;

use crate::args::StoreCommand;
use crate::error::CliError;

use super::Context;

/// Prints the store's counts.
pub async fn run(context: &Context, command: StoreCommand) -> Result<(), CliError> {
    match command {
        StoreCommand::Stats => {
            let stats = context.store().await?.stats().await?;
            let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
                t.map_or_else(|| "-".to_owned(), |t| t.to_rfc3339())
            };
            println!("events: {}", stats.events);
            println!("streams: {}", stats.streams);
            println!("snapshots: {}", stats.snapshots);
            println!("archived: {}", stats.archived);
            println!("last position: {}", stats.last_position);
            println!("outbox pending: {}", stats.outbox_pending);
            println!("oldest: {}", time(stats.oldest));
            println!("newest: {}", time(stats.newest));
            for (event_type, count) in &stats.by_type {
                println!("  {event_type}: {count}");
            }
        }
    }
    Ok(())
}
