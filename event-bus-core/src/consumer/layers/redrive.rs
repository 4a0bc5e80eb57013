//! Redrives are addressed to the group that dead-lettered the event; other groups skip them.

use async_trait::async_trait;

use crate::consumer::{ConsumeLayer, Disposition, Inbound, Next};
use crate::dead_letter::REDRIVE_SUBSCRIPTION_HEADER;

/// Acknowledges, unhandled, a redrive meant for another consumer group.
#[derive(Clone, Copy, Debug, Default)]
pub struct SkipRedrivesForOtherGroups;

#[async_trait]
impl ConsumeLayer for SkipRedrivesForOtherGroups {
    async fn consume(&self, inbound: &mut Inbound<'_>, next: Next<'_>) -> Disposition {
        let config = inbound.config();
        match inbound.message().headers.get(REDRIVE_SUBSCRIPTION_HEADER) {
            Some(target) if *target != config.consumer_group => {
                tracing::debug!(topic = %config.topic, redriven_for = %target, "redrive for another group skipped");
                Disposition::Skipped
            }
            _ => next.run(inbound).await,
        }
    }
}
