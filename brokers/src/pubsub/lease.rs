//! Deliveries a subscription holds (handed out or waiting behind their key) keep their ack
//! deadline extended until they are settled, so a slow handler is not redelivered elsewhere.

use std::sync::Arc;
use std::time::Duration;

use event_bus_core::kit::Leases;
use gcloud_googleapis::pubsub::v1::ModifyAckDeadlineRequest;
use gcloud_pubsub::subscription::Subscription;

/// Most ack ids in one `modifyAckDeadline` request.
const CHUNK: usize = 500;

/// Ack ids held by `subscription`, their deadline extended a third of the way into it.
pub(super) fn kept_leased(
    subscription: Subscription,
    deadline_seconds: i32,
) -> Arc<Leases<String>> {
    let period = Duration::from_secs(u64::try_from(deadline_seconds / 3).unwrap_or(1).max(1));
    Leases::renewed_every(period, move |held| {
        let subscription = subscription.clone();
        async move {
            if let Err(status) = set_deadline(&subscription, held, deadline_seconds).await {
                tracing::debug!(%status, "pubsub: extending leases failed; trying again later");
            }
        }
    })
}

/// Sets the ack deadline of `ack_ids` (0 hands them back at once).
pub(super) async fn set_deadline(
    subscription: &Subscription,
    ack_ids: Vec<String>,
    seconds: i32,
) -> Result<(), gcloud_gax::grpc::Status> {
    for chunk in ack_ids.chunks(CHUNK) {
        let request = ModifyAckDeadlineRequest {
            subscription: subscription.fully_qualified_name().to_owned(),
            ack_ids: chunk.to_vec(),
            ack_deadline_seconds: seconds,
        };
        subscription
            .get_client()
            .modify_ack_deadline(request, None)
            .await?;
    }
    Ok(())
}
