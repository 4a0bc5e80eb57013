//! Driving one saga: each pass reads the stored state and takes one step forward or back,
//! writing the outcome before the next; so a saga interrupted anywhere continues from its
//! last written state. Every write renews this instance's lease on the saga and fails once
//! another instance took it over, which ends the drive.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use event_bus_core::handler::HandlerPanicked;
use futures::FutureExt;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::SagaOrchestrator;
use crate::context::StepContext;
use crate::definition::{Hook, SagaDefinition};
use crate::error::{RepositoryError, StepError};
use crate::state::{SagaState, SagaStatus, StepOutcome, StepPhase, StepRecord};

/// What the drive loop does after one pass.
enum Pass {
    /// Read the state again and take the next step.
    Continue,
    /// The saga is finished.
    Finished,
    /// The driver was stopped (shutdown, or the lease was lost), or the saga cannot be driven
    /// here (gone, or of an unknown type).
    Stop,
}

/// Longest wait the deadline arithmetic allows, so a huge timeout cannot overflow an instant.
const FAR_FUTURE: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

fn tokio_deadline(deadline: DateTime<Utc>) -> tokio::time::Instant {
    let remaining = (deadline - Utc::now())
        .to_std()
        .unwrap_or(Duration::ZERO)
        .min(FAR_FUTURE);
    tokio::time::Instant::now() + remaining
}

fn record(
    state: &SagaState,
    index: usize,
    step: &str,
    phase: StepPhase,
    attempt: u32,
    outcome: StepOutcome,
    error: Option<String>,
) -> StepRecord {
    StepRecord {
        saga_id: state.id,
        step_index: index,
        step: step.to_owned(),
        phase,
        attempt,
        outcome,
        error,
        at: Utc::now(),
    }
}

fn panicked(payload: &(dyn std::any::Any + Send)) -> StepError {
    StepError::transient(HandlerPanicked::from_payload(payload))
}

impl SagaOrchestrator {
    /// Drives the saga until it is finished, another instance owns it, or `stop` is
    /// cancelled; a saga left unfinished is released to other instances.
    pub(super) async fn drive(&self, id: Uuid, stop: CancellationToken) {
        let mut failures = 0;
        loop {
            if stop.is_cancelled() {
                break;
            }
            match self.pass(id, &stop).await {
                Ok(Pass::Continue) => failures = 0,
                Ok(Pass::Finished) => return,
                Ok(Pass::Stop) => break,
                Err(
                    error @ (RepositoryError::Conflict { .. } | RepositoryError::LeaseLost { .. }),
                ) => {
                    if self.owns(id).await {
                        // This instance's own takeover round took the saga back: carry on.
                        continue;
                    }
                    tracing::info!(saga_id = %id, %error, "another instance drives this saga");
                    return;
                }
                Err(error) => {
                    failures += 1;
                    let delay = self
                        .inner
                        .settings
                        .retry
                        .delay_after(failures)
                        .max(Duration::from_millis(50));
                    tracing::warn!(saga_id = %id, %error, ?delay, "saga store failed; retrying");
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
        if let Err(error) = self.inner.repository.release(id, self.inner.instance).await {
            tracing::warn!(saga_id = %id, %error, "could not release the saga; it is taken over when the lease expires");
        }
    }

    async fn owns(&self, id: Uuid) -> bool {
        matches!(
            self.inner.repository.get(id).await,
            Ok(Some(state)) if state.owner == Some(self.inner.instance) && !state.status.is_terminal()
        )
    }

    async fn pass(&self, id: Uuid, stop: &CancellationToken) -> Result<Pass, RepositoryError> {
        let Some(state) = self.inner.repository.get(id).await? else {
            return Ok(Pass::Stop);
        };
        let Some(definition) = self.definition(&state.saga_type) else {
            tracing::warn!(saga_id = %id, saga_type = %state.saga_type, "no definition registered");
            return Ok(Pass::Stop);
        };
        if state.owner != Some(self.inner.instance) && !state.status.is_terminal() {
            return Err(RepositoryError::LeaseLost {
                id,
                owner: self.inner.instance,
            });
        }
        match state.status {
            SagaStatus::Running => self.forward(&definition, state, stop).await,
            SagaStatus::Compensating => self.backward(&definition, state, stop).await,
            SagaStatus::Completed | SagaStatus::Compensated | SagaStatus::Failed => {
                Ok(Pass::Finished)
            }
        }
    }

    async fn save(
        &self,
        state: &SagaState,
        records: &[StepRecord],
    ) -> Result<SagaState, RepositoryError> {
        let mut next = state.clone();
        next.updated_at = Utc::now();
        let saved = self
            .inner
            .repository
            .update(&next, records, &self.lease())
            .await?;
        self.inner.changed.notify_waiters();
        Ok(saved)
    }

    fn context(
        &self,
        state: &SagaState,
        step: &str,
        phase: StepPhase,
        attempt: u32,
    ) -> StepContext {
        StepContext {
            saga_id: state.id,
            saga_type: state.saga_type.clone(),
            step: step.to_owned(),
            phase,
            attempt,
            data: state.data.clone(),
            failure: state.failure.clone(),
            correlation_id: state.correlation_id,
            bus: Arc::clone(&self.inner.bus),
            replies: Arc::clone(&self.inner.replies),
        }
    }

    async fn attempts_so_far(
        &self,
        state: &SagaState,
        index: usize,
        phase: StepPhase,
    ) -> Result<u32, RepositoryError> {
        let log = self.inner.repository.steps(state.id).await?;
        let started = log
            .iter()
            .filter(|r| {
                r.step_index == index && r.phase == phase && r.outcome == StepOutcome::Started
            })
            .count();
        Ok(u32::try_from(started).unwrap_or(u32::MAX))
    }

    /// Runs the next step's action, retrying transient failures, or finishes the saga.
    async fn forward(
        &self,
        definition: &SagaDefinition,
        mut state: SagaState,
        stop: &CancellationToken,
    ) -> Result<Pass, RepositoryError> {
        let index = state.completed_steps;
        let Some(step) = definition.steps.get(index) else {
            let Some(hook_record) = self
                .run_hook(
                    definition.on_completed.as_ref(),
                    &state,
                    "on_completed",
                    stop,
                )
                .await
            else {
                return Ok(Pass::Stop);
            };
            state.status = SagaStatus::Completed;
            self.save(&state, &hook_record).await?;
            tracing::info!(saga_id = %state.id, saga_type = %state.saga_type, "saga completed");
            return Ok(Pass::Continue);
        };
        let mut attempt = self
            .attempts_so_far(&state, index, StepPhase::Action)
            .await?;
        let deadline = tokio_deadline(state.deadline);
        if tokio::time::Instant::now() >= deadline {
            // Timed out while down or between steps: a step that was started may have acted.
            return self
                .timed_out(state, index, &step.name, attempt, attempt > 0)
                .await;
        }
        loop {
            attempt += 1;
            let started = record(
                &state,
                index,
                &step.name,
                StepPhase::Action,
                attempt,
                StepOutcome::Started,
                None,
            );
            state = self.save(&state, &[started]).await?;
            let ctx = self.context(&state, &step.name, StepPhase::Action, attempt);
            let run = AssertUnwindSafe(step.step.execute(&ctx)).catch_unwind();
            let outcome = tokio::select! {
                () = stop.cancelled() => return Ok(Pass::Stop),
                outcome = tokio::time::timeout_at(deadline, run) => outcome,
            };
            let result = match outcome {
                Err(_elapsed) => {
                    return self
                        .timed_out(state, index, &step.name, attempt, true)
                        .await;
                }
                Ok(Err(payload)) => Err(panicked(&*payload)),
                Ok(Ok(result)) => result,
            };
            match result {
                Ok(output) => {
                    if let Some(data) = state.data.as_object_mut() {
                        data.insert(step.name.clone(), output);
                    }
                    state.completed_steps += 1;
                    let done = record(
                        &state,
                        index,
                        &step.name,
                        StepPhase::Action,
                        attempt,
                        StepOutcome::Succeeded,
                        None,
                    );
                    self.save(&state, &[done]).await?;
                    return Ok(Pass::Continue);
                }
                Err(error)
                    if error.is_transient() && attempt < self.inner.settings.max_step_attempts =>
                {
                    let retrying = record(
                        &state,
                        index,
                        &step.name,
                        StepPhase::Action,
                        attempt,
                        StepOutcome::Retrying,
                        Some(error.to_string()),
                    );
                    state = self.save(&state, &[retrying]).await?;
                    let delay = self.inner.settings.retry.delay_after(attempt);
                    tracing::debug!(saga_id = %state.id, step = %step.name, attempt, %error, ?delay, "step failed; retrying");
                    tokio::select! {
                        () = stop.cancelled() => return Ok(Pass::Stop),
                        () = tokio::time::sleep_until(deadline) => {
                            return self.timed_out(state, index, &step.name, attempt, true).await;
                        }
                        () = tokio::time::sleep(delay) => {}
                    }
                }
                Err(error) => {
                    let reason = format!("step `{}` failed: {error}", step.name);
                    tracing::warn!(saga_id = %state.id, saga_type = %state.saga_type, %reason, "compensating");
                    let failed = record(
                        &state,
                        index,
                        &step.name,
                        StepPhase::Action,
                        attempt,
                        StepOutcome::Failed,
                        Some(error.to_string()),
                    );
                    state.status = SagaStatus::Compensating;
                    state.failure = Some(reason);
                    self.save(&state, &[failed]).await?;
                    return Ok(Pass::Continue);
                }
            }
        }
    }

    /// The deadline passed during step `index`; if it was started, its outcome is unknown, so
    /// it is compensated along with the completed ones.
    async fn timed_out(
        &self,
        mut state: SagaState,
        index: usize,
        step: &str,
        attempt: u32,
        started: bool,
    ) -> Result<Pass, RepositoryError> {
        let reason = format!(
            "timed out at {} before step `{step}` finished",
            state.deadline.to_rfc3339()
        );
        tracing::warn!(saga_id = %state.id, saga_type = %state.saga_type, %reason, "compensating");
        let records: Vec<StepRecord> = started
            .then(|| {
                record(
                    &state,
                    index,
                    step,
                    StepPhase::Action,
                    attempt,
                    StepOutcome::TimedOut,
                    Some(reason.clone()),
                )
            })
            .into_iter()
            .collect();
        if started {
            state.completed_steps = index + 1;
        }
        state.status = SagaStatus::Compensating;
        state.failure = Some(reason);
        self.save(&state, &records).await?;
        Ok(Pass::Continue)
    }

    /// Compensates the last uncompensated step, retrying transient failures, or finishes.
    async fn backward(
        &self,
        definition: &SagaDefinition,
        mut state: SagaState,
        stop: &CancellationToken,
    ) -> Result<Pass, RepositoryError> {
        let Some(index) = state.completed_steps.checked_sub(1) else {
            let Some(hook_record) = self
                .run_hook(
                    definition.on_compensated.as_ref(),
                    &state,
                    "on_compensated",
                    stop,
                )
                .await
            else {
                return Ok(Pass::Stop);
            };
            state.status = SagaStatus::Compensated;
            self.save(&state, &hook_record).await?;
            tracing::info!(saga_id = %state.id, saga_type = %state.saga_type, "saga compensated");
            return Ok(Pass::Continue);
        };
        let step = &definition.steps[index.min(definition.steps.len() - 1)];
        let mut attempt = self
            .attempts_so_far(&state, index, StepPhase::Compensation)
            .await?;
        loop {
            attempt += 1;
            let started = record(
                &state,
                index,
                &step.name,
                StepPhase::Compensation,
                attempt,
                StepOutcome::Started,
                None,
            );
            state = self.save(&state, &[started]).await?;
            let ctx = self.context(&state, &step.name, StepPhase::Compensation, attempt);
            let run = AssertUnwindSafe(step.step.compensate(&ctx)).catch_unwind();
            let outcome = tokio::select! {
                () = stop.cancelled() => return Ok(Pass::Stop),
                outcome = run => outcome,
            };
            let result = outcome.unwrap_or_else(|payload| Err(panicked(&*payload)));
            match result {
                Ok(()) => {
                    state.completed_steps = index;
                    let done = record(
                        &state,
                        index,
                        &step.name,
                        StepPhase::Compensation,
                        attempt,
                        StepOutcome::Succeeded,
                        None,
                    );
                    self.save(&state, &[done]).await?;
                    return Ok(Pass::Continue);
                }
                Err(error)
                    if error.is_transient()
                        && attempt < self.inner.settings.max_compensation_attempts =>
                {
                    let retrying = record(
                        &state,
                        index,
                        &step.name,
                        StepPhase::Compensation,
                        attempt,
                        StepOutcome::Retrying,
                        Some(error.to_string()),
                    );
                    state = self.save(&state, &[retrying]).await?;
                    let delay = self.inner.settings.retry.delay_after(attempt);
                    tokio::select! {
                        () = stop.cancelled() => return Ok(Pass::Stop),
                        () = tokio::time::sleep(delay) => {}
                    }
                }
                Err(error) => {
                    let reason = format!(
                        "{}; compensation of step `{}` failed: {error}",
                        state.failure.as_deref().unwrap_or("compensating"),
                        step.name
                    );
                    tracing::error!(saga_id = %state.id, saga_type = %state.saga_type, %reason, "saga failed; needs an operator");
                    state.failure = Some(reason);
                    let Some(mut records) = self
                        .run_hook(definition.on_failed.as_ref(), &state, "on_failed", stop)
                        .await
                    else {
                        return Ok(Pass::Stop);
                    };
                    records.insert(
                        0,
                        record(
                            &state,
                            index,
                            &step.name,
                            StepPhase::Compensation,
                            attempt,
                            StepOutcome::Failed,
                            Some(error.to_string()),
                        ),
                    );
                    state.status = SagaStatus::Failed;
                    self.save(&state, &records).await?;
                    return Ok(Pass::Continue);
                }
            }
        }
    }

    /// Runs an outcome hook with retries; `None` on shutdown, else the log records of a hook
    /// that failed for good (which does not change the saga's outcome).
    async fn run_hook(
        &self,
        hook: Option<&Hook>,
        state: &SagaState,
        name: &str,
        stop: &CancellationToken,
    ) -> Option<Vec<StepRecord>> {
        let Some(hook) = hook else {
            return Some(Vec::new());
        };
        let phase = if name == "on_completed" {
            StepPhase::Action
        } else {
            StepPhase::Compensation
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let ctx = self.context(state, name, phase, attempt);
            let run = AssertUnwindSafe(hook(ctx)).catch_unwind();
            let outcome = tokio::select! {
                () = stop.cancelled() => return None,
                outcome = run => outcome,
            };
            match outcome.unwrap_or_else(|payload| Err(panicked(&*payload))) {
                Ok(()) => return Some(Vec::new()),
                Err(error)
                    if error.is_transient()
                        && attempt < self.inner.settings.max_compensation_attempts =>
                {
                    let delay = self.inner.settings.retry.delay_after(attempt);
                    tokio::select! {
                        () = stop.cancelled() => return None,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
                Err(error) => {
                    tracing::error!(saga_id = %state.id, hook = name, %error, "saga hook failed");
                    return Some(vec![record(
                        state,
                        state.completed_steps,
                        name,
                        phase,
                        attempt,
                        StepOutcome::Failed,
                        Some(error.to_string()),
                    )]);
                }
            }
        }
    }
}
