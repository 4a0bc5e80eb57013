//! Password reset: [`PasswordResetRequested`] starts it; issue and store a token, send the
//! e-mail with the link, then wait until the token is consumed (the user set a new password:
//! [`PasswordResetCompleted`]) or expired. On expiry, a failed step or the deadline (the
//! token's validity), the token is revoked, the user is told if the e-mail had gone out, and
//! [`PasswordResetFailed`] is published.

pub mod events;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use event_bus_core::DomainEvent;

pub use events::{
    PasswordResetCompleted, PasswordResetEmailSent, PasswordResetFailed, PasswordResetRequested,
    PasswordResetTokenIssued,
};

use super::ExampleServices;
use crate::context::StepContext;
use crate::definition::{SagaDefinition, Step};
use crate::error::StepError;

/// Name of the saga.
pub const SAGA: &str = "password-reset";
/// Step names, in order.
pub const STEPS: [&str; 3] = ["issue_token", "send_email", "await_use"];

/// Where a reset token stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenStatus {
    /// Issued, neither used nor expired yet.
    Pending,
    /// Used to set a new password.
    Consumed,
    /// Past its validity, unused.
    Expired,
}

/// The token was not used in time.
#[derive(Debug, thiserror::Error)]
#[error("the reset token of request {0} expired unused")]
pub struct TokenExpired(pub String);

/// The token is still waiting to be used; the step asks again after a backoff.
#[derive(Debug, thiserror::Error)]
#[error("the reset token of request {0} is not used yet")]
pub struct TokenPending(pub String);

/// The services the reset calls. Every method must be idempotent per request.
#[async_trait]
pub trait PasswordResetServices: Send + Sync + 'static {
    /// Issues a token for the request, valid for `valid_for`, and stores it (its digest).
    async fn issue_token(
        &self,
        request_id: &str,
        user_id: &str,
        valid_for: Duration,
    ) -> Result<(), StepError>;
    /// Revokes the request's token, so it can no longer be used.
    async fn revoke_token(&self, request_id: &str) -> Result<(), StepError>;
    /// Sends the e-mail with the reset link to the user's address, which it looks up.
    async fn send_reset_email(&self, request_id: &str, user_id: &str) -> Result<(), StepError>;
    /// Where the request's token stands.
    async fn token_status(&self, request_id: &str) -> Result<TokenStatus, StepError>;
    /// Tells the user what happened to their reset.
    async fn notify_user(&self, user_id: &str, message: &str) -> Result<(), StepError>;
}

/// The password-reset saga over `services`; a token is valid for `token_validity`, which is also
/// the saga's deadline. The last step asks for the token's status with the saga's retry backoff
/// until it is consumed or expired, so `SAGA_MAX_STEP_ATTEMPTS` and the backoff must cover the
/// validity (or the service reports expiry itself).
pub fn definition(
    services: Arc<dyn PasswordResetServices>,
    token_validity: Duration,
) -> SagaDefinition {
    SagaDefinition::new(SAGA, PasswordResetRequested::EVENT_TYPE)
        .timeout(token_validity)
        .step(
            STEPS[0],
            IssueToken {
                services: Arc::clone(&services),
                valid_for: token_validity,
            },
        )
        .step(STEPS[1], SendEmail(Arc::clone(&services)))
        .step(STEPS[2], AwaitUse(services))
        .on_completed(|ctx| async move {
            let request: PasswordResetRequested = ctx.trigger()?;
            ctx.publish(&PasswordResetCompleted {
                request_id: request.request_id,
                user_id: request.user_id,
            })
            .await
        })
        .on_compensated(|ctx| async move {
            let request: PasswordResetRequested = ctx.trigger()?;
            ctx.publish(&PasswordResetFailed {
                request_id: request.request_id,
                user_id: request.user_id,
                reason: ctx.failure.clone().unwrap_or_default(),
            })
            .await
        })
}

struct IssueToken {
    services: Arc<dyn PasswordResetServices>,
    valid_for: Duration,
}

#[async_trait]
impl Step for IssueToken {
    async fn execute(&self, ctx: &StepContext) -> Result<serde_json::Value, StepError> {
        let request: PasswordResetRequested = ctx.trigger()?;
        self.services
            .issue_token(&request.request_id, &request.user_id, self.valid_for)
            .await?;
        ctx.publish(&PasswordResetTokenIssued {
            request_id: request.request_id,
            user_id: request.user_id,
            valid_for_seconds: self.valid_for.as_secs(),
        })
        .await?;
        Ok(serde_json::Value::Null)
    }

    async fn compensate(&self, ctx: &StepContext) -> Result<(), StepError> {
        let request: PasswordResetRequested = ctx.trigger()?;
        self.services.revoke_token(&request.request_id).await
    }
}

struct SendEmail(Arc<dyn PasswordResetServices>);

#[async_trait]
impl Step for SendEmail {
    async fn execute(&self, ctx: &StepContext) -> Result<serde_json::Value, StepError> {
        let request: PasswordResetRequested = ctx.trigger()?;
        self.0
            .send_reset_email(&request.request_id, &request.user_id)
            .await?;
        ctx.publish(&PasswordResetEmailSent {
            request_id: request.request_id,
            user_id: request.user_id,
        })
        .await?;
        Ok(serde_json::Value::Null)
    }

    /// An e-mail cannot be unsent: the user is told the link no longer works.
    async fn compensate(&self, ctx: &StepContext) -> Result<(), StepError> {
        let request: PasswordResetRequested = ctx.trigger()?;
        self.0
            .notify_user(
                &request.user_id,
                "your password reset link is no longer valid; request a new one",
            )
            .await
    }
}

struct AwaitUse(Arc<dyn PasswordResetServices>);

#[async_trait]
impl Step for AwaitUse {
    async fn execute(&self, ctx: &StepContext) -> Result<serde_json::Value, StepError> {
        let request: PasswordResetRequested = ctx.trigger()?;
        match self.0.token_status(&request.request_id).await? {
            TokenStatus::Consumed => Ok(serde_json::json!({ "consumed": true })),
            TokenStatus::Pending => Err(StepError::transient(TokenPending(request.request_id))),
            TokenStatus::Expired => Err(StepError::permanent(TokenExpired(request.request_id))),
        }
    }

    /// Waiting changes nothing.
    async fn compensate(&self, _ctx: &StepContext) -> Result<(), StepError> {
        Ok(())
    }
}

/// Operations `token.issue`, `token.revoke`, `email.send_reset`, `token.status`,
/// `user.notify`; facts `reset_token:{request}`, `reset_email:{request}`,
/// `notified:{user}`. A token is consumed when the fact `reset_consumed:{request}` is held and
/// expired when `reset_expired:{request}` is (a test or example holds them).
#[async_trait]
impl PasswordResetServices for ExampleServices {
    async fn issue_token(
        &self,
        request_id: &str,
        _user_id: &str,
        _valid_for: Duration,
    ) -> Result<(), StepError> {
        self.perform("token.issue", &format!("reset_token:{request_id}"), true)
            .await
    }

    async fn revoke_token(&self, request_id: &str) -> Result<(), StepError> {
        self.perform("token.revoke", &format!("reset_token:{request_id}"), false)
            .await
    }

    async fn send_reset_email(&self, request_id: &str, _user_id: &str) -> Result<(), StepError> {
        self.perform(
            "email.send_reset",
            &format!("reset_email:{request_id}"),
            true,
        )
        .await
    }

    async fn token_status(&self, request_id: &str) -> Result<TokenStatus, StepError> {
        self.perform("token.status", &format!("status:{request_id}"), false)
            .await?;
        Ok(if self.has(&format!("reset_consumed:{request_id}")) {
            TokenStatus::Consumed
        } else if self.has(&format!("reset_expired:{request_id}")) {
            TokenStatus::Expired
        } else {
            TokenStatus::Pending
        })
    }

    async fn notify_user(&self, user_id: &str, _message: &str) -> Result<(), StepError> {
        self.perform("user.notify", &format!("notified:{user_id}"), true)
            .await
    }
}
