//! `eventbus publish`: one event from an argument or standard input.

use std::io::Read;

use event_bus_core::EventEnvelope;

use crate::args::PublishArgs;
use crate::error::CliError;

use super::Context;

/// Publishes the event and prints its id.
pub async fn run(context: &Context, args: PublishArgs) -> Result<(), CliError> {
    let text = match args.json.as_deref() {
        None | Some("-") => {
            let mut input = String::new();
            std::io::stdin().read_to_string(&mut input)?;
            input
        }
        Some(json) => json.to_owned(),
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(CliError::InvalidJson)?;
    let event = match args.event_type {
        None if value.get("specversion").is_some() => {
            serde_json::from_value::<EventEnvelope>(value).map_err(CliError::InvalidJson)?
        }
        None => return Err(CliError::MissingEventType),
        Some(event_type) => {
            let mut builder = EventEnvelope::builder(event_type, value).source(args.source);
            if let Some(aggregate) = args.aggregate {
                let (aggregate_type, aggregate_id) = aggregate
                    .split_once(':')
                    .filter(|(t, id)| !t.is_empty() && !id.is_empty())
                    .ok_or_else(|| CliError::InvalidAggregate(aggregate.clone()))?;
                builder = builder.aggregate(aggregate_type, aggregate_id, 0);
            }
            builder.build()
        }
    };
    let bus = context.bus().await?;
    match &args.topic {
        Some(topic) => bus.publish_to(topic, &event).await?,
        None => bus.publish(&event).await?,
    }
    bus.shutdown().await?;
    println!("{}", event.id);
    Ok(())
}
