//! Domain events of GDPR data deletion.

use event_bus_core::DomainEvent;
use serde::{Deserialize, Serialize};

/// A user asked for their data to be erased; starts the saga.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserDataDeletionRequested {
    /// The request, for the audit trail.
    pub request_id: String,
    /// The user.
    pub user_id: String,
}

/// One service deleted the user's data and confirmed it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserDataDeletedInService {
    /// The request.
    pub request_id: String,
    /// The user.
    pub user_id: String,
    /// The confirming service.
    pub service: String,
    /// Records it deleted.
    pub records_deleted: u64,
}

/// Every service confirmed the deletion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserDataDeleted {
    /// The request.
    pub request_id: String,
    /// The user.
    pub user_id: String,
    /// The services that confirmed, in order.
    pub services: Vec<String>,
}

/// The deletion did not finish (a service failed, or the deadline passed): lists what was
/// and what was not confirmed, so nothing is silently partial.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserDataDeletionFailed {
    /// The request.
    pub request_id: String,
    /// The user.
    pub user_id: String,
    /// Services that confirmed the deletion.
    pub confirmed: Vec<String>,
    /// Services that did not.
    pub unconfirmed: Vec<String>,
    /// Why.
    pub reason: String,
}

macro_rules! deletion_event {
    ($($event:ident => $name:literal),* $(,)?) => {$(
        impl DomainEvent for $event {
            const EVENT_TYPE: &'static str = $name;
            const AGGREGATE_TYPE: &'static str = "user";

            fn aggregate_id(&self) -> String {
                self.user_id.clone()
            }
        }
    )*};
}

deletion_event! {
    UserDataDeletionRequested => "gdpr.deletion_requested",
    UserDataDeletedInService => "gdpr.data_deleted_in_service",
    UserDataDeleted => "gdpr.data_deleted",
    UserDataDeletionFailed => "gdpr.deletion_failed",
}
