//! The bus's own consume layers, in the order the stack runs them (outermost first):
//!
//! 1. [`SkipRedrivesForOtherGroups`]: a redrive addressed to another group is acknowledged.
//! 2. [`TenantFilter`] (tenant subscriptions only): another tenant's events are acknowledged
//!    unhandled; an event whose body names another tenant than its attribute is dead-lettered.
//! 3. [`SizeLimit`]: an oversize message is dead-lettered.
//! 4. [`Decode`]: a payload that is not an event envelope is dead-lettered.
//! 5. [`Trace`]: the `event.handle` span, the per-event log line and the handling metrics.
//! 6. The user's own layers ([`EventBus::with_consume_layer`](crate::EventBus::with_consume_layer)),
//!    in the order they were added.
//! 7. [`RetryDecision`]: a handler failure becomes a delayed retry or a dead letter.
//! 8. The handler, itself wrapped by the handler layers: idempotency, then the time limit,
//!    then the panic catch.

mod decode;
mod redrive;
mod retry_decision;
mod size_limit;
mod tenant;
mod trace;

use std::sync::Arc;

use super::{ConsumeLayer, ConsumeStack};
use crate::handler::Handler;
use crate::transport::SubscriptionConfig;

pub use decode::Decode;
pub use redrive::SkipRedrivesForOtherGroups;
pub use retry_decision::RetryDecision;
pub use size_limit::SizeLimit;
pub use tenant::TenantFilter;
pub use trace::Trace;

/// The stack above, for a subscription of `config` on `backend`, with the user's `own`
/// layers in their place.
pub fn standard_stack(
    config: &SubscriptionConfig,
    backend: &'static str,
    max_message_bytes: usize,
    own: &[Arc<dyn ConsumeLayer>],
    handler: Arc<dyn Handler>,
) -> ConsumeStack {
    let mut layers: Vec<Arc<dyn ConsumeLayer>> = vec![Arc::new(SkipRedrivesForOtherGroups)];
    if let Some(tenant) = &config.tenant {
        layers.push(Arc::new(TenantFilter {
            tenant: tenant.clone(),
            max_bytes: max_message_bytes,
        }));
    }
    layers.push(Arc::new(SizeLimit {
        max_bytes: max_message_bytes,
    }));
    layers.push(Arc::new(Decode));
    layers.push(Arc::new(Trace { backend }));
    layers.extend(own.iter().cloned());
    layers.push(Arc::new(RetryDecision));
    ConsumeStack::new(layers, handler)
}
