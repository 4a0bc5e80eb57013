//! How a saga is defined: an ordered list of steps, each an action with a compensation, and
//! hooks that run when the saga completes, is compensated, or fails.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;

use crate::context::StepContext;
use crate::error::StepError;

/// One step of a saga. The action runs at least once (again after a crash mid-step), so it
/// should be idempotent per [`StepContext::idempotency_key`]. An action that returns an error
/// must leave nothing behind: only completed steps are compensated, plus the step the
/// deadline interrupted. The compensation must be idempotent too, and must succeed when the
/// action had no effect.
#[async_trait]
pub trait Step: Send + Sync + 'static {
    /// Does the step's work; the output is kept in the saga data under the step's name.
    async fn execute(&self, ctx: &StepContext) -> Result<serde_json::Value, StepError>;

    /// Undoes the step's work.
    async fn compensate(&self, ctx: &StepContext) -> Result<(), StepError>;
}

/// A step from two async closures: the action and the compensation.
pub struct FnStep<A, C> {
    action: A,
    compensation: C,
}

/// Makes a [`Step`] of `action(ctx)` and `compensation(ctx)`.
pub fn step_fn<A, AF, C, CF>(action: A, compensation: C) -> FnStep<A, C>
where
    A: Fn(StepContext) -> AF + Send + Sync + 'static,
    AF: Future<Output = Result<serde_json::Value, StepError>> + Send + 'static,
    C: Fn(StepContext) -> CF + Send + Sync + 'static,
    CF: Future<Output = Result<(), StepError>> + Send + 'static,
{
    FnStep {
        action,
        compensation,
    }
}

#[async_trait]
impl<A, AF, C, CF> Step for FnStep<A, C>
where
    A: Fn(StepContext) -> AF + Send + Sync + 'static,
    AF: Future<Output = Result<serde_json::Value, StepError>> + Send + 'static,
    C: Fn(StepContext) -> CF + Send + Sync + 'static,
    CF: Future<Output = Result<(), StepError>> + Send + 'static,
{
    async fn execute(&self, ctx: &StepContext) -> Result<serde_json::Value, StepError> {
        (self.action)(ctx.clone()).await
    }

    async fn compensate(&self, ctx: &StepContext) -> Result<(), StepError> {
        (self.compensation)(ctx.clone()).await
    }
}

/// Runs when a saga ends; retried like a compensation.
pub type Hook = Arc<dyn Fn(StepContext) -> BoxFuture<'static, Result<(), StepError>> + Send + Sync>;

/// A named step of a definition.
pub struct NamedStep {
    /// The step's name, unique in its saga.
    pub name: String,
    /// What it does.
    pub step: Arc<dyn Step>,
}

/// A saga: started by an event type, it runs its steps in order; on a terminal failure or
/// at its deadline it compensates the completed steps in reverse order.
pub struct SagaDefinition {
    /// Name of the saga, unique in an orchestrator.
    pub name: String,
    /// Type of the event that starts it.
    pub trigger: String,
    /// The steps, in order.
    pub steps: Vec<NamedStep>,
    /// Overrides `SAGA_TIMEOUT_SECONDS` for this saga.
    pub timeout: Option<Duration>,
    pub(crate) on_completed: Option<Hook>,
    pub(crate) on_compensated: Option<Hook>,
    pub(crate) on_failed: Option<Hook>,
}

/// A definition that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum DefinitionError {
    /// It has no steps.
    #[error("saga `{0}` has no steps")]
    NoSteps(String),
    /// Two steps share a name, or a step is named `trigger` (the key of the trigger payload).
    #[error("saga `{saga}`: step name `{step}` is used twice or reserved")]
    StepName {
        /// The saga.
        saga: String,
        /// The step name.
        step: String,
    },
}

impl SagaDefinition {
    /// A saga named `name`, started by events of type `trigger`.
    pub fn new(name: impl Into<String>, trigger: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            trigger: trigger.into(),
            steps: Vec::new(),
            timeout: None,
            on_completed: None,
            on_compensated: None,
            on_failed: None,
        }
    }

    /// Appends a step.
    #[must_use]
    pub fn step(mut self, name: impl Into<String>, step: impl Step) -> Self {
        self.steps.push(NamedStep {
            name: name.into(),
            step: Arc::new(step),
        });
        self
    }

    /// Sets this saga's own timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Runs `hook` when every step succeeded, before the saga is marked completed.
    #[must_use]
    pub fn on_completed<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(StepContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), StepError>> + Send + 'static,
    {
        self.on_completed = Some(boxed(hook));
        self
    }

    /// Runs `hook` after every completed step was compensated, before the saga is marked
    /// compensated.
    #[must_use]
    pub fn on_compensated<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(StepContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), StepError>> + Send + 'static,
    {
        self.on_compensated = Some(boxed(hook));
        self
    }

    /// Runs `hook` when a compensation failed for good, before the saga is marked failed.
    #[must_use]
    pub fn on_failed<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(StepContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), StepError>> + Send + 'static,
    {
        self.on_failed = Some(boxed(hook));
        self
    }

    /// Checks that the definition can run.
    pub fn validate(&self) -> Result<(), DefinitionError> {
        if self.steps.is_empty() {
            return Err(DefinitionError::NoSteps(self.name.clone()));
        }
        let mut seen = HashSet::new();
        for step in &self.steps {
            if step.name == "trigger" || !seen.insert(step.name.as_str()) {
                return Err(DefinitionError::StepName {
                    saga: self.name.clone(),
                    step: step.name.clone(),
                });
            }
        }
        Ok(())
    }
}

fn boxed<F, Fut>(hook: F) -> Hook
where
    F: Fn(StepContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), StepError>> + Send + 'static,
{
    Arc::new(move |ctx| Box::pin(hook(ctx)))
}
