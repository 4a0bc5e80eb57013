//! Domain events of a password reset.

use event_bus_core::DomainEvent;
use serde::{Deserialize, Serialize};

/// A user asked to reset their password; starts the saga. It names the user only: the e-mail
/// service looks the address up, so neither the events nor the saga's stored state hold it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PasswordResetRequested {
    /// The request, also the token's id.
    pub request_id: String,
    /// The user.
    pub user_id: String,
}

/// A reset token was issued and stored (only its digest is kept by the service).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PasswordResetTokenIssued {
    /// The request.
    pub request_id: String,
    /// The user.
    pub user_id: String,
    /// Seconds the token is valid for.
    pub valid_for_seconds: u64,
}

/// The e-mail with the reset link was sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PasswordResetEmailSent {
    /// The request.
    pub request_id: String,
    /// The user.
    pub user_id: String,
}

/// The user used the token and set a new password.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PasswordResetCompleted {
    /// The request.
    pub request_id: String,
    /// The user.
    pub user_id: String,
}

/// The reset did not complete (the token expired, a step failed, or the deadline passed); the
/// token was revoked and, if the e-mail had gone out, the user told.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PasswordResetFailed {
    /// The request.
    pub request_id: String,
    /// The user.
    pub user_id: String,
    /// Why.
    pub reason: String,
}

macro_rules! reset_event {
    ($($event:ident => $name:literal),* $(,)?) => {$(
        impl DomainEvent for $event {
            const EVENT_TYPE: &'static str = $name;
            const AGGREGATE_TYPE: &'static str = "password_reset";

            fn aggregate_id(&self) -> String {
                self.request_id.clone()
            }
        }
    )*};
}

reset_event! {
    PasswordResetRequested => "password.reset_requested",
    PasswordResetTokenIssued => "password.reset_token_issued",
    PasswordResetEmailSent => "password.reset_email_sent",
    PasswordResetCompleted => "password.reset_completed",
    PasswordResetFailed => "password.reset_failed",
}
