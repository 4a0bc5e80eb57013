//! Steps driven by commands over the bus: a [`CommandStep`] publishes a command event and
//! waits for the participant's reply on `saga.reply`; a [`participant`] handler runs the
//! command in the service that owns it and publishes the reply.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use event_bus_core::{EventBus, EventEnvelope, Handler, HandlerError};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::context::StepContext;
use crate::definition::Step;
use crate::error::StepError;
use crate::state::StepPhase;

/// Event type of every participant's reply.
pub const REPLY_EVENT_TYPE: &str = "saga.reply";

/// Headers a command carries and its reply copies, so the reply finds its step.
pub mod headers {
    /// The saga.
    pub const SAGA_ID: &str = "x-saga-id";
    /// The step's name.
    pub const STEP: &str = "x-saga-step";
    /// `action` or `compensation`.
    pub const PHASE: &str = "x-saga-phase";
    /// The step's attempt number.
    pub const ATTEMPT: &str = "x-saga-attempt";
    /// Every saga header, in order.
    pub const ALL: [&str; 4] = [SAGA_ID, STEP, PHASE, ATTEMPT];
}

/// What a participant replies to a command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CommandReply {
    /// The command was carried out; the output goes into the saga data.
    Succeeded {
        /// The participant's output.
        output: serde_json::Value,
    },
    /// The command failed.
    Failed {
        /// Why.
        error: String,
        /// Whether a retry may help.
        transient: bool,
    },
}

/// Why a command step got no usable reply.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The orchestrator does not listen for replies: call `SagaOrchestrator::subscribe`.
    #[error("no subscription to `saga.reply`; call SagaOrchestrator::subscribe first")]
    NotSubscribed,
    /// No reply came in time.
    #[error("no reply to `{command}` within {timeout:?}")]
    NoReply {
        /// The command type.
        command: String,
        /// How long the step waited.
        timeout: Duration,
    },
    /// The participant reported a failure.
    #[error("`{command}` failed in the participant: {error}")]
    Participant {
        /// The command type.
        command: String,
        /// The participant's error.
        error: String,
    },
    /// A command envelope without the saga headers reached a participant.
    #[error("event `{0}` carries no saga headers; not a saga command")]
    NotACommand(String),
}

/// Steps waiting for replies, by saga, step, phase and attempt.
#[derive(Default)]
pub(crate) struct Replies {
    waiting: Mutex<HashMap<String, oneshot::Sender<CommandReply>>>,
    subscribed: AtomicBool,
}

fn reply_key(saga_id: &str, step: &str, phase: &str, attempt: &str) -> String {
    format!("{saga_id}/{step}/{phase}/{attempt}")
}

impl Replies {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, oneshot::Sender<CommandReply>>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn mark_subscribed(&self) {
        self.subscribed.store(true, Ordering::SeqCst);
    }

    /// Hands a reply to the step waiting for it; a reply nobody waits for (an earlier
    /// attempt's, or another orchestrator's) is dropped.
    pub(crate) fn deliver(&self, envelope: &EventEnvelope) -> Result<(), HandlerError> {
        let header = |name| envelope.headers.get(name).map_or("", String::as_str);
        let key = reply_key(
            header(headers::SAGA_ID),
            header(headers::STEP),
            header(headers::PHASE),
            header(headers::ATTEMPT),
        );
        let reply: CommandReply =
            serde_json::from_value(envelope.payload.clone()).map_err(HandlerError::permanent)?;
        if let Some(waiter) = self.lock().remove(&key) {
            let _ = waiter.send(reply);
        }
        Ok(())
    }
}

/// Removes a waiter when its step stops waiting, however it stops.
struct Waiting<'a> {
    replies: &'a Replies,
    key: String,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.replies.lock().remove(&self.key);
    }
}

impl StepContext {
    /// Publishes the command `command_type` with `payload` and waits up to `reply_timeout`
    /// for the participant's reply. Each attempt sends a command with an idempotency key of
    /// its own, so a retried step reaches the participant again; the participant must be
    /// idempotent per the saga, step and phase headers.
    pub async fn send_command(
        &self,
        command_type: &str,
        payload: serde_json::Value,
        reply_timeout: Duration,
    ) -> Result<serde_json::Value, StepError> {
        if !self.replies.subscribed.load(Ordering::SeqCst) {
            return Err(StepError::permanent(CommandError::NotSubscribed));
        }
        let (saga_id, attempt) = (self.saga_id.to_string(), self.attempt.to_string());
        let key = reply_key(&saga_id, &self.step, self.phase.as_str(), &attempt);
        let (sender, receiver) = oneshot::channel();
        self.replies.lock().insert(key.clone(), sender);
        let _waiting = Waiting {
            replies: &self.replies,
            key,
        };
        let command = EventEnvelope::builder(command_type, payload)
            .source(format!("saga/{}", self.saga_type))
            .aggregate("saga", saga_id.clone(), u64::from(self.attempt))
            .correlation_id(self.correlation_id.to_string())
            .header(headers::SAGA_ID, saga_id)
            .header(headers::STEP, self.step.clone())
            .header(headers::PHASE, self.phase.as_str())
            .header(headers::ATTEMPT, attempt)
            .idempotency_key(format!("{}:{}", self.idempotency_key(), self.attempt))
            .build();
        self.bus.publish(&command).await?;
        let no_reply = || {
            StepError::transient(CommandError::NoReply {
                command: command_type.to_owned(),
                timeout: reply_timeout,
            })
        };
        match tokio::time::timeout(reply_timeout, receiver).await {
            Err(_) | Ok(Err(_)) => Err(no_reply()),
            Ok(Ok(CommandReply::Succeeded { output })) => Ok(output),
            Ok(Ok(CommandReply::Failed { error, transient })) => {
                let error = CommandError::Participant {
                    command: command_type.to_owned(),
                    error,
                };
                Err(if transient {
                    StepError::transient(error)
                } else {
                    StepError::permanent(error)
                })
            }
        }
    }
}

/// Builds a command's payload from the saga as the step sees it.
pub type CommandPayload = Arc<dyn Fn(&StepContext) -> serde_json::Value + Send + Sync>;

/// A step carried out by another service: the action sends `command`, the compensation
/// sends `compensation` (when there is one); each waits for the participant's reply.
pub struct CommandStep {
    command: String,
    compensation: Option<String>,
    reply_timeout: Duration,
    payload: CommandPayload,
}

/// A [`CommandStep`]; `payload` builds both commands' payloads (see [`StepContext::phase`]).
pub fn command_step(
    command: impl Into<String>,
    compensation: Option<&str>,
    reply_timeout: Duration,
    payload: impl Fn(&StepContext) -> serde_json::Value + Send + Sync + 'static,
) -> CommandStep {
    CommandStep {
        command: command.into(),
        compensation: compensation.map(str::to_owned),
        reply_timeout,
        payload: Arc::new(payload),
    }
}

#[async_trait]
impl Step for CommandStep {
    async fn execute(&self, ctx: &StepContext) -> Result<serde_json::Value, StepError> {
        ctx.send_command(&self.command, (self.payload)(ctx), self.reply_timeout)
            .await
    }

    async fn compensate(&self, ctx: &StepContext) -> Result<(), StepError> {
        let Some(command) = &self.compensation else {
            return Ok(());
        };
        ctx.send_command(command, (self.payload)(ctx), self.reply_timeout)
            .await
            .map(|_| ())
    }
}

/// A handler for a participant service: runs `f` for each saga command and publishes its
/// outcome as the reply. A failure of `f` is replied, not retried by the bus; a reply that
/// cannot be published makes the command be redelivered.
pub fn participant<F, Fut>(bus: Arc<EventBus>, f: F) -> Participant<F>
where
    F: Fn(EventEnvelope) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<serde_json::Value, StepError>> + Send + 'static,
{
    Participant { bus, f }
}

/// See [`participant`].
pub struct Participant<F> {
    bus: Arc<EventBus>,
    f: F,
}

#[async_trait]
impl<F, Fut> Handler for Participant<F>
where
    F: Fn(EventEnvelope) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<serde_json::Value, StepError>> + Send + 'static,
{
    async fn handle(&self, command: &EventEnvelope) -> Result<(), HandlerError> {
        if headers::ALL
            .iter()
            .any(|name| !command.headers.contains_key(*name))
        {
            return Err(HandlerError::permanent(CommandError::NotACommand(
                command.event_type.clone(),
            )));
        }
        let reply = match (self.f)(command.clone()).await {
            Ok(output) => CommandReply::Succeeded { output },
            Err(error) => CommandReply::Failed {
                transient: error.is_transient(),
                error: error.to_string(),
            },
        };
        let mut builder = command
            .caused(
                REPLY_EVENT_TYPE,
                serde_json::to_value(&reply).map_err(HandlerError::permanent)?,
            )
            .aggregate("saga", command.aggregate_id.clone(), 0)
            .idempotency_key(format!("reply:{}", command.idempotency_key));
        for name in headers::ALL {
            builder = builder.header(name, command.headers[name].clone());
        }
        self.bus
            .publish(&builder.build())
            .await
            .map_err(HandlerError::retryable)
    }
}

impl StepPhase {
    /// Reads a phase from a command's header.
    pub fn from_header(command: &EventEnvelope) -> Option<Self> {
        command
            .headers
            .get(headers::PHASE)
            .and_then(|p| p.parse().ok())
    }
}
