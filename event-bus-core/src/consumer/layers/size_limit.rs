//! Messages over the size limit are dead-lettered before anything reads them.

use async_trait::async_trait;

use crate::consumer::{ConsumeLayer, Disposition, Inbound, Next};
use crate::dead_letter::DeadLetterReason;
use crate::error::BusError;

/// Dead-letters messages larger than `max_bytes` (payload and headers).
#[derive(Clone, Copy, Debug)]
pub struct SizeLimit {
    /// The largest message handled.
    pub max_bytes: usize,
}

#[async_trait]
impl ConsumeLayer for SizeLimit {
    async fn consume(&self, inbound: &mut Inbound<'_>, next: Next<'_>) -> Disposition {
        let size = inbound.message().size();
        if size > self.max_bytes {
            let error = BusError::MessageTooLarge {
                size,
                limit: self.max_bytes,
            };
            return Disposition::dead_letter(DeadLetterReason::Oversize, error);
        }
        next.run(inbound).await
    }
}
