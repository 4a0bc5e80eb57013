//! `eventbus replay`: stored events back onto the bus, with a progress bar.

use std::sync::Arc;

use event_store::replay::Replayer;
use event_store::store::EventFilter;

use crate::args::ReplayArgs;
use crate::error::CliError;
use crate::progress;

use super::Context;

/// Counts the selected events, then publishes them marked as replays.
pub async fn run(context: &Context, args: ReplayArgs) -> Result<(), CliError> {
    let filter = EventFilter {
        from: args.from,
        to: args.to,
        event_types: args.event_types,
        aggregate_type: args.aggregate_type,
        aggregate_id: args.aggregate_id,
    };
    let replayer = Replayer::new(Arc::new(context.store().await?)).batch_size(args.batch);
    let total = replayer.count(&filter, args.after_position).await?;
    if args.dry_run {
        println!("would replay {total} events");
        return Ok(());
    }
    let bus = context.bus().await?;
    let bar = progress::bar(total, "replaying");
    let result = replayer
        .replay_to_bus(&filter, args.after_position, &bus, |p| {
            bar.set_position(p.replayed)
        })
        .await;
    bar.finish_and_clear();
    let done = result?;
    bus.shutdown().await?;
    println!(
        "replayed {} events (last position {})",
        done.replayed, done.last_position
    );
    Ok(())
}
