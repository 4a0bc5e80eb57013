//! GDPR data deletion: every participating service deletes the user's data and confirms, in
//! turn, before a deadline; then the user's data key is forgotten ([`FORGET_STEP`]), so their
//! personal fields in the event store, snapshots, broker logs and dead letters are unreadable
//! for good. Deletions cannot be undone, so compensation does nothing; forgetting cannot be
//! undone either, which is why it runs last, only after every service confirmed. A failure is
//! reported with [`UserDataDeletionFailed`], naming the services that confirmed and those that
//! did not. Success publishes [`UserDataDeleted`].

pub mod events;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use event_bus_core::DomainEvent;
use personal_data::KeyStore;

pub use events::{
    UserDataDeleted, UserDataDeletedInService, UserDataDeletionFailed, UserDataDeletionRequested,
};

use super::ExampleServices;
use crate::context::StepContext;
use crate::definition::{SagaDefinition, Step};
use crate::error::StepError;

/// Name of the saga.
pub const SAGA: &str = "gdpr-data-deletion";

/// The services holding user data. Deleting must be idempotent: deleting what is gone
/// confirms zero records.
#[async_trait]
pub trait DataDeletionServices: Send + Sync + 'static {
    /// Deletes the user's data in `service`; returns how many records went.
    async fn delete_user_data(&self, service: &str, user_id: &str) -> Result<u64, StepError>;
}

/// Name of the step that deletes in `service`.
pub fn step_name(service: &str) -> String {
    format!("delete_in_{service}")
}

/// Name of the last step, which forgets the user's data key.
pub const FORGET_STEP: &str = "forget_personal_data";

/// The deletion saga over `participants` (service names, deleted in this order), then
/// forgetting the user in `keys`, to finish within `deadline`.
pub fn definition(
    services: Arc<dyn DataDeletionServices>,
    participants: &[&str],
    keys: Arc<dyn KeyStore>,
    deadline: Duration,
) -> SagaDefinition {
    let names: Vec<String> = participants.iter().map(|s| (*s).to_owned()).collect();
    let mut definition = SagaDefinition::new(SAGA, UserDataDeletionRequested::EVENT_TYPE)
        .timeout(deadline)
        .on_completed({
            let names = names.clone();
            move |ctx| {
                let names = names.clone();
                async move {
                    let request: UserDataDeletionRequested = ctx.trigger()?;
                    ctx.publish(&UserDataDeleted {
                        request_id: request.request_id,
                        user_id: request.user_id,
                        services: names,
                    })
                    .await
                }
            }
        })
        .on_compensated(move |ctx| {
            let names = names.clone();
            async move {
                let request: UserDataDeletionRequested = ctx.trigger()?;
                let (confirmed, unconfirmed) = names
                    .into_iter()
                    .partition(|service| ctx.succeeded(&step_name(service)));
                ctx.publish(&UserDataDeletionFailed {
                    request_id: request.request_id,
                    user_id: request.user_id,
                    confirmed,
                    unconfirmed,
                    reason: ctx.failure.clone().unwrap_or_default(),
                })
                .await
            }
        });
    for service in participants {
        definition = definition.step(
            step_name(service),
            DeleteIn {
                service: (*service).to_owned(),
                services: Arc::clone(&services),
            },
        );
    }
    definition.step(FORGET_STEP, Forget { keys })
}

/// Deletes the user's data key; the user's sealed personal fields never decrypt again.
struct Forget {
    keys: Arc<dyn KeyStore>,
}

#[async_trait]
impl Step for Forget {
    async fn execute(&self, ctx: &StepContext) -> Result<serde_json::Value, StepError> {
        let request: UserDataDeletionRequested = ctx.trigger()?;
        let held = self
            .keys
            .forget(&request.user_id)
            .await
            .map_err(StepError::transient)?;
        Ok(serde_json::json!({ "key_forgotten": held }))
    }

    /// Nothing to undo: this step is last, so no later step can fail after it, and a failure
    /// of its own leaves the key in place.
    async fn compensate(&self, _ctx: &StepContext) -> Result<(), StepError> {
        Ok(())
    }
}

struct DeleteIn {
    service: String,
    services: Arc<dyn DataDeletionServices>,
}

#[async_trait]
impl Step for DeleteIn {
    async fn execute(&self, ctx: &StepContext) -> Result<serde_json::Value, StepError> {
        let request: UserDataDeletionRequested = ctx.trigger()?;
        let records_deleted = self
            .services
            .delete_user_data(&self.service, &request.user_id)
            .await?;
        ctx.publish(&UserDataDeletedInService {
            request_id: request.request_id,
            user_id: request.user_id,
            service: self.service.clone(),
            records_deleted,
        })
        .await?;
        Ok(serde_json::json!({ "records_deleted": records_deleted }))
    }

    /// Erased data is not restored; the failure report names this service as confirmed.
    async fn compensate(&self, _ctx: &StepContext) -> Result<(), StepError> {
        Ok(())
    }
}

/// Operation `{service}.delete`; removes the fact `{service}-data:{user}` and reports one
/// record when it was held.
#[async_trait]
impl DataDeletionServices for ExampleServices {
    async fn delete_user_data(&self, service: &str, user_id: &str) -> Result<u64, StepError> {
        let fact = format!("{service}-data:{user_id}");
        let held = u64::from(self.has(&fact));
        self.perform(&format!("{service}.delete"), &fact, false)
            .await?;
        Ok(held)
    }
}
