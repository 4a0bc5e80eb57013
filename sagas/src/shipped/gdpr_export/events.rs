//! Domain events of GDPR data export.

use event_bus_core::DomainEvent;
use serde::{Deserialize, Serialize};

/// A user asked for a copy of their data; starts the saga.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserDataExportRequested {
    /// The request.
    pub request_id: String,
    /// The user.
    pub user_id: String,
}

/// The export is ready to download.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserDataExportCompleted {
    /// The request.
    pub request_id: String,
    /// The user.
    pub user_id: String,
    /// Where to download the archive.
    pub download_url: String,
    /// Services whose data is in the archive.
    pub services: Vec<String>,
}

/// The export failed; any archive and link were removed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserDataExportFailed {
    /// The request.
    pub request_id: String,
    /// The user.
    pub user_id: String,
    /// Why.
    pub reason: String,
}

macro_rules! export_event {
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

export_event! {
    UserDataExportRequested => "gdpr.export_requested",
    UserDataExportCompleted => "gdpr.export_completed",
    UserDataExportFailed => "gdpr.export_failed",
}
