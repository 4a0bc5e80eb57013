//! What is persisted of a saga: its state and the log of every step attempt.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::RepositoryError;

/// Where a saga is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SagaStatus {
    /// Executing its steps forward.
    Running,
    /// A step failed terminally or the deadline passed; undoing the completed steps.
    Compensating,
    /// Every step succeeded.
    Completed,
    /// Failed, and every completed step was compensated.
    Compensated,
    /// A compensation failed for good: the saga is partially undone and needs an operator.
    Failed,
}

impl SagaStatus {
    /// Every status.
    pub const ALL: [SagaStatus; 5] = [
        Self::Running,
        Self::Compensating,
        Self::Completed,
        Self::Compensated,
        Self::Failed,
    ];

    /// Whether the saga is finished.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Compensated | Self::Failed)
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Compensating => "compensating",
            Self::Completed => "completed",
            Self::Compensated => "compensated",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for SagaStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SagaStatus {
    type Err = RepositoryError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == value)
            .ok_or_else(|| RepositoryError::Corrupt(format!("unknown saga status `{value}`")))
    }
}

/// One saga instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SagaState {
    /// Derived from the saga name and the trigger's idempotency key.
    pub id: Uuid,
    /// Name of the saga definition.
    pub saga_type: String,
    /// Idempotency key of the triggering event; unique per saga type.
    pub trigger_key: String,
    /// Correlation id of the triggering event, carried by every event the saga publishes.
    pub correlation_id: Uuid,
    /// Where the saga is.
    pub status: SagaStatus,
    /// The trigger's payload under `trigger`, and each completed step's output under its name.
    pub data: serde_json::Value,
    /// Steps executed and not compensated: while running, the index of the next step; while
    /// compensating, the next step to compensate is the one before this index.
    pub completed_steps: usize,
    /// Why the saga failed, when it did.
    pub failure: Option<String>,
    /// After this instant the saga is compensated.
    pub deadline: DateTime<Utc>,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version, bumped by every write and every change of owner.
    pub version: i64,
    /// The orchestrator instance driving the saga; `None` once finished or released.
    pub owner: Option<Uuid>,
    /// When the owner's lease runs out unless renewed; after it any instance may take over.
    pub lease_expires_at: Option<DateTime<Utc>>,
}

/// Whether a log entry belongs to an action or a compensation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepPhase {
    /// The forward action.
    Action,
    /// The undo.
    Compensation,
}

impl StepPhase {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Action => "action",
            Self::Compensation => "compensation",
        }
    }
}

impl FromStr for StepPhase {
    type Err = RepositoryError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "action" => Ok(Self::Action),
            "compensation" => Ok(Self::Compensation),
            other => Err(RepositoryError::Corrupt(format!(
                "unknown step phase `{other}`"
            ))),
        }
    }
}

/// What happened to one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// The attempt began.
    Started,
    /// It succeeded.
    Succeeded,
    /// It failed and will be retried.
    Retrying,
    /// It failed for good.
    Failed,
    /// The saga's deadline passed while it ran.
    TimedOut,
}

impl StepOutcome {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Succeeded => "succeeded",
            Self::Retrying => "retrying",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
        }
    }
}

impl FromStr for StepOutcome {
    type Err = RepositoryError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        [
            Self::Started,
            Self::Succeeded,
            Self::Retrying,
            Self::Failed,
            Self::TimedOut,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
        .ok_or_else(|| RepositoryError::Corrupt(format!("unknown step outcome `{value}`")))
    }
}

/// One entry of a saga's step log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The saga.
    pub saga_id: Uuid,
    /// Index of the step in the definition.
    pub step_index: usize,
    /// Name of the step.
    pub step: String,
    /// Action or compensation.
    pub phase: StepPhase,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// What happened.
    pub outcome: StepOutcome,
    /// The error, for failures.
    pub error: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}
