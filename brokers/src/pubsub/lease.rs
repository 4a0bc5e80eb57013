//! Deliveries a subscription holds (handed out or waiting behind their key) keep their ack
//! deadline extended until they are settled, so a slow handler is not redelivered elsewhere.

use std::collections::HashSet;
use std::sync::{Mutex, Weak};
use std::time::Duration;

use gcloud_googleapis::pubsub::v1::ModifyAckDeadlineRequest;
use gcloud_pubsub::subscription::Subscription;

/// Most ack ids in one `modifyAckDeadline` request.
const CHUNK: usize = 500;

/// Ack ids currently held by one subscription.
#[derive(Default)]
pub(super) struct Leases {
    held: Mutex<HashSet<String>>,
}

impl Leases {
    pub(super) fn hold(&self, ack_id: &str) {
        self.lock().insert(ack_id.to_owned());
    }

    pub(super) fn release(&self, ack_id: &str) {
        self.lock().remove(ack_id);
    }

    /// Every held ack id, emptying the set.
    pub(super) fn take_all(&self) -> Vec<String> {
        self.lock().drain().collect()
    }

    fn snapshot(&self) -> Vec<String> {
        self.lock().iter().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Extends the deadline of every held ack id a third of the way into it, until the leases
/// are dropped.
pub(super) fn keep_leased(leases: Weak<Leases>, subscription: Subscription, deadline_seconds: i32) {
    let period = Duration::from_secs(u64::try_from(deadline_seconds / 3).unwrap_or(1).max(1));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(period).await;
            let Some(held) = leases.upgrade().map(|l| l.snapshot()) else {
                return;
            };
            for ack_ids in held.chunks(CHUNK) {
                let request = ModifyAckDeadlineRequest {
                    subscription: subscription.fully_qualified_name().to_owned(),
                    ack_ids: ack_ids.to_vec(),
                    ack_deadline_seconds: deadline_seconds,
                };
                if let Err(status) = subscription
                    .get_client()
                    .modify_ack_deadline(request, None)
                    .await
                {
                    tracing::debug!(%status, "pubsub: extending leases failed; trying again later");
                }
            }
        }
    });
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
