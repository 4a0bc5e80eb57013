//! `eventbus setup`: create, as an identity allowed to, everything the bus uses, so that
//! services can run with `EVENT_BUS_TOPOLOGY=existing` and least privilege.

use event_bus_core::{SubscriptionConfig, TopologyMode};

use crate::args::SetupArgs;
use crate::error::CliError;

use super::Context;

/// Provisions each subscription, whatever `EVENT_BUS_TOPOLOGY` says: the backend creates
/// what it needs (topics, groups, retry queues, the dead-letter topic and its
/// keeping group), and prints each piece; on a backend that keeps events, they then wait for
/// their handler from now on.
pub async fn run(context: &Context, args: SetupArgs) -> Result<(), CliError> {
    let mut settings = context.settings.clone();
    settings.topology = TopologyMode::Create;
    let bus = event_bus_brokers::connect(settings).await?;
    let mut subscriptions: Vec<SubscriptionConfig> = Vec::new();
    for event_type in &args.event_types {
        for handler in &args.handlers {
            subscriptions.push(bus.subscription(event_type, handler));
        }
    }
    subscriptions.push(context.dead_letters());
    for config in &subscriptions {
        bus.broker().provision(config).await?;
        println!(
            "topic {}, group {}: dead letters to {} after {} attempts",
            config.topic,
            config.consumer_group,
            config.dead_letter_topic.as_deref().unwrap_or("-"),
            config.max_delivery_attempts
        );
        for item in bus.broker().topology(config) {
            println!("  ready: {} {item}", bus.broker().name());
        }
    }
    bus.shutdown().await?;
    Ok(())
}
