//! `eventbus tail`: print a topic's events as JSON lines.

use std::io::Write;
use std::time::Duration;

use event_bus_core::{EventEnvelope, Message, SubscriptionConfig};

use crate::args::TailArgs;
use crate::error::CliError;

use super::Context;

/// An event as one JSON line; a message that is no envelope as its headers and text.
fn line(message: &Message) -> String {
    match EventEnvelope::from_message(message) {
        Ok(event) => serde_json::to_string(&event).unwrap_or_default(),
        Err(_) => serde_json::json!({
            "malformed": true,
            "headers": message.headers,
            "payload": String::from_utf8_lossy(&message.payload),
        })
        .to_string(),
    }
}

/// Prints events until the count is reached, the idle time passed, or Ctrl-C.
pub async fn run(context: &Context, args: TailArgs) -> Result<(), CliError> {
    let bus = context.bus().await?;
    let topic = match (&args.topic, &args.event_type) {
        (Some(topic), _) => topic.clone(),
        (None, Some(event_type)) => bus.topics().topic(event_type),
        (None, None) => unreachable!("clap requires an event type or --topic"),
    };
    // A group of this run's own is removed when it ends (and expires if it is killed).
    let config = match args.group {
        Some(group) => SubscriptionConfig::new(&topic, group),
        None => SubscriptionConfig::new(
            &topic,
            format!("eventbus-tail-{}", uuid::Uuid::now_v7().simple()),
        )
        .ephemeral(),
    };
    let mut subscription = bus.broker().subscribe(&config).await?;
    let idle = args.idle_secs.map(Duration::from_secs);
    let mut printed = 0u64;
    let mut stdout = std::io::stdout();
    while args.count.is_none_or(|count| printed < count) {
        let next = tokio::select! {
            next = subscription.next() => next,
            () = async {
                match idle {
                    Some(idle) => tokio::time::sleep(idle).await,
                    None => std::future::pending().await,
                }
            } => break,
            _ = tokio::signal::ctrl_c() => break,
        };
        let Some(delivery) = next else { break };
        let delivery = delivery?;
        writeln!(stdout, "{}", line(delivery.message()))?;
        stdout.flush()?;
        delivery.ack().await?;
        printed += 1;
    }
    subscription.close().await?;
    bus.shutdown().await?;
    Ok(())
}
