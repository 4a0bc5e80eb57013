//! Reading the event envelope out of the message.

use async_trait::async_trait;

use crate::consumer::{ConsumeLayer, Disposition, Inbound, Next};
use crate::dead_letter::DeadLetterReason;
use crate::envelope::EventEnvelope;

/// Decodes the event (binary or structured CloudEvents); dead-letters a malformed payload.
#[derive(Clone, Copy, Debug, Default)]
pub struct Decode;

#[async_trait]
impl ConsumeLayer for Decode {
    async fn consume(&self, inbound: &mut Inbound<'_>, next: Next<'_>) -> Disposition {
        if inbound.envelope().is_none() {
            match EventEnvelope::from_message(inbound.message()) {
                Ok(envelope) => inbound.set_envelope(envelope),
                Err(error) => {
                    return Disposition::dead_letter(DeadLetterReason::MalformedPayload, error);
                }
            }
        }
        next.run(inbound).await
    }
}
