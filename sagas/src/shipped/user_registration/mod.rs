//! User registration: create the profile, store default preferences, send the welcome
//! e-mail, record the signup in analytics. Publishes [`UserProfileCreated`],
//! [`UserPreferencesInitialized`], [`WelcomeEmailSent`], then [`UserOnboardingCompleted`]; on
//! failure the completed steps are undone and [`UserRegistrationFailed`] is published.

pub mod events;

use std::sync::Arc;

use async_trait::async_trait;
use event_bus_core::DomainEvent;

pub use events::{
    UserOnboardingCompleted, UserPreferencesInitialized, UserProfileCreated, UserProfileDeleted,
    UserRegistered, UserRegistrationFailed, WelcomeEmailSent,
};

use super::ExampleServices;
use crate::context::StepContext;
use crate::definition::{SagaDefinition, Step};
use crate::error::StepError;

/// Name of the saga.
pub const SAGA: &str = "user-registration";
/// Step names, in order.
pub const STEPS: [&str; 4] = [
    "create_profile",
    "default_preferences",
    "welcome_email",
    "analytics",
];

/// The services the registration steps call. Every method must be idempotent.
#[async_trait]
pub trait UserRegistrationServices: Send + Sync + 'static {
    /// Creates the user's profile.
    async fn create_profile(&self, user: &UserRegistered) -> Result<(), StepError>;
    /// Deletes the user's profile.
    async fn delete_profile(&self, user_id: &str) -> Result<(), StepError>;
    /// Stores default preferences and returns them.
    async fn create_default_preferences(
        &self,
        user_id: &str,
    ) -> Result<serde_json::Value, StepError>;
    /// Deletes the user's preferences.
    async fn delete_preferences(&self, user_id: &str) -> Result<(), StepError>;
    /// Sends the welcome e-mail.
    async fn send_welcome_email(&self, user: &UserRegistered) -> Result<(), StepError>;
    /// Makes up for a welcome e-mail of a registration that failed (such as a follow-up).
    async fn retract_welcome_email(&self, user: &UserRegistered) -> Result<(), StepError>;
    /// Records the signup in analytics.
    async fn record_signup(&self, user_id: &str) -> Result<(), StepError>;
    /// Removes the signup from analytics.
    async fn remove_signup(&self, user_id: &str) -> Result<(), StepError>;
}

/// The user-registration saga over `services`.
pub fn definition(services: Arc<dyn UserRegistrationServices>) -> SagaDefinition {
    SagaDefinition::new(SAGA, UserRegistered::EVENT_TYPE)
        .step(STEPS[0], CreateProfile(Arc::clone(&services)))
        .step(STEPS[1], DefaultPreferences(Arc::clone(&services)))
        .step(STEPS[2], WelcomeEmail(Arc::clone(&services)))
        .step(STEPS[3], Analytics(services))
        .on_completed(|ctx| async move {
            let user: UserRegistered = ctx.trigger()?;
            ctx.publish(&UserOnboardingCompleted {
                user_id: user.user_id,
            })
            .await
        })
        .on_compensated(|ctx| async move {
            let user: UserRegistered = ctx.trigger()?;
            ctx.publish(&UserRegistrationFailed {
                user_id: user.user_id,
                reason: ctx.failure.clone().unwrap_or_default(),
            })
            .await
        })
}

struct CreateProfile(Arc<dyn UserRegistrationServices>);

#[async_trait]
impl Step for CreateProfile {
    async fn execute(&self, ctx: &StepContext) -> Result<serde_json::Value, StepError> {
        let user: UserRegistered = ctx.trigger()?;
        self.0.create_profile(&user).await?;
        ctx.publish(&UserProfileCreated {
            user_id: user.user_id.clone(),
            name: user.name,
        })
        .await?;
        Ok(serde_json::json!({ "profile_id": user.user_id }))
    }

    async fn compensate(&self, ctx: &StepContext) -> Result<(), StepError> {
        let user: UserRegistered = ctx.trigger()?;
        self.0.delete_profile(&user.user_id).await?;
        ctx.publish(&UserProfileDeleted {
            user_id: user.user_id,
        })
        .await
    }
}

struct DefaultPreferences(Arc<dyn UserRegistrationServices>);

#[async_trait]
impl Step for DefaultPreferences {
    async fn execute(&self, ctx: &StepContext) -> Result<serde_json::Value, StepError> {
        let user: UserRegistered = ctx.trigger()?;
        let preferences = self.0.create_default_preferences(&user.user_id).await?;
        ctx.publish(&UserPreferencesInitialized {
            user_id: user.user_id,
            preferences: preferences.clone(),
        })
        .await?;
        Ok(preferences)
    }

    async fn compensate(&self, ctx: &StepContext) -> Result<(), StepError> {
        let user: UserRegistered = ctx.trigger()?;
        self.0.delete_preferences(&user.user_id).await
    }
}

struct WelcomeEmail(Arc<dyn UserRegistrationServices>);

#[async_trait]
impl Step for WelcomeEmail {
    async fn execute(&self, ctx: &StepContext) -> Result<serde_json::Value, StepError> {
        let user: UserRegistered = ctx.trigger()?;
        self.0.send_welcome_email(&user).await?;
        ctx.publish(&WelcomeEmailSent {
            user_id: user.user_id,
            email: user.email.clone(),
        })
        .await?;
        Ok(serde_json::json!({ "sent_to": user.email }))
    }

    async fn compensate(&self, ctx: &StepContext) -> Result<(), StepError> {
        self.0.retract_welcome_email(&ctx.trigger()?).await
    }
}

struct Analytics(Arc<dyn UserRegistrationServices>);

#[async_trait]
impl Step for Analytics {
    async fn execute(&self, ctx: &StepContext) -> Result<serde_json::Value, StepError> {
        let user: UserRegistered = ctx.trigger()?;
        self.0.record_signup(&user.user_id).await?;
        Ok(serde_json::Value::Null)
    }

    async fn compensate(&self, ctx: &StepContext) -> Result<(), StepError> {
        let user: UserRegistered = ctx.trigger()?;
        self.0.remove_signup(&user.user_id).await
    }
}

/// Operations: `profile.create`, `profile.delete`, `preferences.create`,
/// `preferences.delete`, `welcome_email.send`, `welcome_email.retract`, `analytics.record`,
/// `analytics.remove`; facts `profile:{user}`, `preferences:{user}`, `welcome_email:{user}`,
/// `signup:{user}`.
#[async_trait]
impl UserRegistrationServices for ExampleServices {
    async fn create_profile(&self, user: &UserRegistered) -> Result<(), StepError> {
        self.perform("profile.create", &format!("profile:{}", user.user_id), true)
            .await
    }

    async fn delete_profile(&self, user_id: &str) -> Result<(), StepError> {
        self.perform("profile.delete", &format!("profile:{user_id}"), false)
            .await
    }

    async fn create_default_preferences(
        &self,
        user_id: &str,
    ) -> Result<serde_json::Value, StepError> {
        self.perform(
            "preferences.create",
            &format!("preferences:{user_id}"),
            true,
        )
        .await?;
        Ok(serde_json::json!({ "language": "en", "newsletter": false }))
    }

    async fn delete_preferences(&self, user_id: &str) -> Result<(), StepError> {
        self.perform(
            "preferences.delete",
            &format!("preferences:{user_id}"),
            false,
        )
        .await
    }

    async fn send_welcome_email(&self, user: &UserRegistered) -> Result<(), StepError> {
        let fact = format!("welcome_email:{}", user.user_id);
        self.perform("welcome_email.send", &fact, true).await
    }

    async fn retract_welcome_email(&self, user: &UserRegistered) -> Result<(), StepError> {
        let fact = format!("welcome_email:{}", user.user_id);
        self.perform("welcome_email.retract", &fact, false).await
    }

    async fn record_signup(&self, user_id: &str) -> Result<(), StepError> {
        self.perform("analytics.record", &format!("signup:{user_id}"), true)
            .await
    }

    async fn remove_signup(&self, user_id: &str) -> Result<(), StepError> {
        self.perform("analytics.remove", &format!("signup:{user_id}"), false)
            .await
    }
}
