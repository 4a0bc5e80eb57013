//! Domain events of user registration.

use event_bus_core::DomainEvent;
use serde::{Deserialize, Serialize};

/// A user signed up; starts the saga.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserRegistered {
    /// The user.
    pub user_id: String,
    /// Where the welcome e-mail goes.
    pub email: String,
    /// Display name.
    pub name: String,
}

/// The user's profile exists.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserProfileCreated {
    /// The user.
    pub user_id: String,
    /// Display name on the profile.
    pub name: String,
}

/// The user's profile was removed by compensation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserProfileDeleted {
    /// The user.
    pub user_id: String,
}

/// Default preferences were stored for the user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserPreferencesInitialized {
    /// The user.
    pub user_id: String,
    /// The defaults stored.
    pub preferences: serde_json::Value,
}

/// The welcome e-mail went out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WelcomeEmailSent {
    /// The user.
    pub user_id: String,
    /// The address.
    pub email: String,
}

/// Every registration step succeeded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserOnboardingCompleted {
    /// The user.
    pub user_id: String,
}

/// Registration failed and was undone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserRegistrationFailed {
    /// The user.
    pub user_id: String,
    /// Why.
    pub reason: String,
}

macro_rules! user_event {
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

user_event! {
    UserRegistered => "user.registered",
    UserProfileCreated => "user.profile_created",
    UserProfileDeleted => "user.profile_deleted",
    UserPreferencesInitialized => "user.preferences_initialized",
    WelcomeEmailSent => "user.welcome_email_sent",
    UserOnboardingCompleted => "user.onboarding_completed",
    UserRegistrationFailed => "user.registration_failed",
}
