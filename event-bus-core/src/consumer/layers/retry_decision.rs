//! What a handler failure leads to: another attempt later, or the dead-letter topic.

use async_trait::async_trait;

use crate::consumer::{ConsumeLayer, Disposition, Inbound, Next};
use crate::dead_letter::DeadLetterReason;
use crate::handler::HandlerError;
use crate::transport::SubscriptionConfig;

/// Turns [`Disposition::Failed`] into a retry with the subscription's backoff, or a dead
/// letter once the failure is permanent or the attempts are used up.
#[derive(Clone, Copy, Debug, Default)]
pub struct RetryDecision;

impl RetryDecision {
    /// The disposition of the `attempt`-th delivery that failed with `error`.
    pub fn decide(error: HandlerError, attempt: u32, config: &SubscriptionConfig) -> Disposition {
        match error {
            HandlerError::Deferred { after, reason } => {
                tracing::debug!(delay_ms = after.as_millis() as u64, %reason, "not handled now; delivering it again later");
                Disposition::Defer { after }
            }
            HandlerError::Permanent(error) => {
                Disposition::dead_letter(DeadLetterReason::PermanentFailure, error)
            }
            HandlerError::Retryable(error) if attempt >= config.max_delivery_attempts => {
                Disposition::dead_letter(
                    DeadLetterReason::MaxAttemptsExceeded,
                    format!("{error} (after {attempt} attempts)"),
                )
            }
            HandlerError::Retryable(error) => {
                let after = config.retry.delay_after(attempt);
                tracing::debug!(%error, delay_ms = after.as_millis() as u64, "handler failed; retrying later");
                Disposition::Retry { after }
            }
        }
    }
}

#[async_trait]
impl ConsumeLayer for RetryDecision {
    async fn consume(&self, inbound: &mut Inbound<'_>, next: Next<'_>) -> Disposition {
        match next.run(inbound).await {
            Disposition::Failed(error) => Self::decide(error, inbound.attempt(), inbound.config()),
            decided => decided,
        }
    }
}
