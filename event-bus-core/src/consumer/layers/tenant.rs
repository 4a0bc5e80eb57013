//! A tenant subscription handles only its tenant's events, named by the `tenant_id`
//! attribute or, without it, by the event itself.

use async_trait::async_trait;

use crate::consumer::{ConsumeLayer, Disposition, Inbound, Next};
use crate::dead_letter::DeadLetterReason;
use crate::envelope::{EventEnvelope, header_tenant};

/// Skips other tenants' events, as a broker-side filter on the attribute would; an event
/// without the attribute is read for its tenant, and one that cannot be read names none of
/// this tenant's, so it is skipped too (groups without a tenant dead-letter it).
#[derive(Clone, Debug)]
pub struct TenantFilter {
    /// The tenant handled.
    pub tenant: String,
    /// Messages above this size are not read for their tenant.
    pub max_bytes: usize,
}

#[async_trait]
impl ConsumeLayer for TenantFilter {
    async fn consume(&self, inbound: &mut Inbound<'_>, next: Next<'_>) -> Disposition {
        let message = inbound.message();
        let readable = message.size() <= self.max_bytes;
        let decoded = || {
            readable
                .then(|| EventEnvelope::from_message(message).ok())
                .flatten()
        };
        let names_tenant =
            |envelope: &EventEnvelope| envelope.tenant_id.as_deref() == Some(&self.tenant);
        match header_tenant(message) {
            Some(named) if named != self.tenant => return self.skip(inbound),
            Some(_) => {
                if let Some(envelope) = decoded() {
                    if !names_tenant(&envelope) {
                        let error = format!(
                            "event of tenant `{}` carried with the attribute of tenant `{}`",
                            envelope.tenant_id.as_deref().unwrap_or_default(),
                            self.tenant
                        );
                        return Disposition::dead_letter(DeadLetterReason::TenantMismatch, error);
                    }
                    inbound.set_envelope(envelope);
                }
            }
            None => match decoded() {
                Some(envelope) if names_tenant(&envelope) => inbound.set_envelope(envelope),
                _ => return self.skip(inbound),
            },
        }
        next.run(inbound).await
    }
}

impl TenantFilter {
    fn skip(&self, inbound: &Inbound<'_>) -> Disposition {
        tracing::debug!(topic = %inbound.config().topic, wanted = %self.tenant, "event of another tenant skipped");
        Disposition::Skipped
    }
}
