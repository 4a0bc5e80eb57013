//! A real worker process runs a saga against PostgreSQL and is killed with SIGKILL mid-step;
//! a second run resumes it once the dead worker's lease has expired: to completion before the
//! deadline, to compensation after it.
#![cfg(feature = "postgres")]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::postgres::{DATABASE_URL, TestSchema};
use common::*;
use event_bus_sagas::shipped::user_registration::SAGA;
use event_bus_sagas::{SagaRepository, SagaStatus, StepOutcome, StepPhase, saga_id};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

const WORKER: &str = env!("CARGO_BIN_EXE_saga-crash-worker");

struct Worker {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    seen: Vec<String>,
}

impl Worker {
    fn spawn(schema: &str, args: &[&str], timeout_seconds: u64) -> Self {
        Self::spawn_with_lease(schema, args, timeout_seconds, 1)
    }

    fn spawn_with_lease(
        schema: &str,
        args: &[&str],
        timeout_seconds: u64,
        lease_seconds: u64,
    ) -> Self {
        let mut child = Command::new(WORKER)
            .args([DATABASE_URL, schema])
            .args(args)
            .env("SAGA_TIMEOUT_SECONDS", timeout_seconds.to_string())
            .env("SAGA_RETRY_INITIAL_BACKOFF_MS", "5")
            .env("SAGA_LEASE_SECONDS", lease_seconds.to_string())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the worker binary starts");
        let lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads output until a line equal to (or starting with) `wanted` appears.
    async fn wait_for_line(&mut self, wanted: &str) -> String {
        let read = async {
            while let Some(line) = self.lines.next_line().await.expect("worker output") {
                self.seen.push(line.clone());
                if line.starts_with(wanted) {
                    return line;
                }
            }
            panic!(
                "worker exited before printing `{wanted}`; printed {:?}",
                self.seen
            );
        };
        tokio::time::timeout(WAIT, read)
            .await
            .unwrap_or_else(|_| panic!("no `{wanted}` within {WAIT:?}"))
    }

    /// Service calls printed so far.
    fn calls(&self) -> Vec<&str> {
        self.seen
            .iter()
            .filter_map(|l| l.strip_prefix("call "))
            .collect()
    }

    /// Waits for the worker to exit by itself; returns everything it printed.
    async fn wait_exit(mut self) -> Vec<String> {
        let read = async {
            while let Some(line) = self.lines.next_line().await.expect("worker output") {
                self.seen.push(line);
            }
        };
        tokio::time::timeout(WAIT, read)
            .await
            .expect("the worker exits");
        self.seen
    }

    async fn sigkill(mut self) -> Vec<String> {
        self.child.kill().await.expect("SIGKILL the worker");
        self.calls().into_iter().map(str::to_owned).collect()
    }
}

/// Waits until `instant` has passed.
async fn wait_past(instant: chrono::DateTime<chrono::Utc>) {
    let past = tokio::time::timeout(WAIT, async {
        while chrono::Utc::now() <= instant {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    past.await.expect("the instant passes");
}

#[tokio::test]
async fn a_killed_worker_s_saga_is_resumed_by_the_next_run() {
    let schema = TestSchema::new();
    let user_id = format!("u-{}", uuid::Uuid::now_v7().simple());
    let id = saga_id(SAGA, &format!("signup-{user_id}"));

    let mut first = Worker::spawn_with_lease(
        &schema.name,
        &["start", &user_id, "welcome_email.send"],
        300,
        3,
    );
    first.wait_for_line("call welcome_email.send").await;
    let first_calls = first.sigkill().await;
    assert_eq!(
        first_calls,
        ["profile.create", "preferences.create", "welcome_email.send"]
    );

    let repository = schema.repository().await;
    let killed = repository.get(id).await.unwrap().expect("stored");
    assert_eq!(
        (killed.status, killed.completed_steps),
        (SagaStatus::Running, 2)
    );
    let lease_end = killed.lease_expires_at.expect("the dead worker's lease");
    let early = Worker::spawn(&schema.name, &["resume"], 300);
    assert_eq!(
        early.wait_exit().await,
        Vec::<String>::new(),
        "nothing is resumed while the dead worker's lease runs"
    );
    wait_past(lease_end).await;

    let mut second = Worker::spawn(&schema.name, &["resume"], 300);
    assert_eq!(
        second.wait_for_line("resumed").await,
        format!("resumed {id}")
    );
    assert_eq!(
        second.wait_for_line("finished").await,
        format!("finished {id} completed")
    );
    assert_eq!(
        second.calls(),
        ["welcome_email.send", "analytics.record"],
        "completed steps are not run again; the interrupted one is"
    );
    let log = repository.steps(id).await.unwrap();
    let email_attempts: Vec<(u32, StepOutcome)> = log
        .iter()
        .filter(|r| r.step == "welcome_email" && r.phase == StepPhase::Action)
        .map(|r| (r.attempt, r.outcome))
        .collect();
    assert_eq!(
        email_attempts,
        [
            (1, StepOutcome::Started),
            (2, StepOutcome::Started),
            (2, StepOutcome::Succeeded)
        ]
    );
}

#[tokio::test]
async fn a_saga_whose_deadline_passed_while_down_is_compensated_on_restart() {
    let schema = TestSchema::new();
    let user_id = format!("u-{}", uuid::Uuid::now_v7().simple());
    let id = saga_id(SAGA, &format!("signup-{user_id}"));

    let mut first = Worker::spawn(&schema.name, &["start", &user_id, "analytics.record"], 5);
    first.wait_for_line("call analytics.record").await;
    first.sigkill().await;

    let repository = schema.repository().await;
    let killed = repository.get(id).await.unwrap().expect("stored");
    assert_eq!(
        (killed.status, killed.completed_steps),
        (SagaStatus::Running, 3)
    );
    wait_past(
        killed
            .deadline
            .max(killed.lease_expires_at.expect("a lease")),
    )
    .await;

    let mut second = Worker::spawn(&schema.name, &["resume"], 5);
    assert_eq!(
        second.wait_for_line("finished").await,
        format!("finished {id} compensated")
    );
    assert_eq!(
        second.calls(),
        [
            "analytics.remove",
            "welcome_email.retract",
            "preferences.delete",
            "profile.delete"
        ],
        "the interrupted step is compensated too, then the completed ones in reverse"
    );
    let state = repository.get(id).await.unwrap().unwrap();
    assert!(
        failure(&state).starts_with("timed out"),
        "{}",
        failure(&state)
    );
}
