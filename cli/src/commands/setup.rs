//! `eventbus setup`: create subscriptions and the dead-letter wiring before anything runs.

use crate::args::SetupArgs;
use crate::error::CliError;

use super::Context;

/// Joins and leaves each subscription once, so the backend creates what it needs; on a
/// backend that keeps events, they then wait for their handler from now on.
pub async fn run(context: &Context, args: SetupArgs) -> Result<(), CliError> {
    let bus = context.bus().await?;
    for event_type in &args.event_types {
        for handler in &args.handlers {
            let config = bus.subscription(event_type, handler);
            bus.broker().subscribe(&config).await?.close().await?;
            println!(
                "{}: topic {}, subscription {}, dead letters to {} after {} attempts",
                event_type,
                config.topic,
                config.consumer_group,
                config.dead_letter_topic.as_deref().unwrap_or("-"),
                config.max_delivery_attempts
            );
        }
    }
    let dead_letters = context.dead_letters();
    bus.broker().subscribe(&dead_letters).await?.close().await?;
    println!(
        "dead letters: topic {}, subscription {}",
        dead_letters.topic, dead_letters.consumer_group
    );
    bus.shutdown().await?;
    Ok(())
}
