//! Sagas on several orchestrator processes, as in a rolling deploy: 1,000 sagas triggered over
//! real Redis, state in real PostgreSQL, two `saga-fleet-worker` processes sharing the work, a
//! third started halfway (calling `resume()` while the others run), and one of the first two
//! killed with SIGKILL two thirds through. Every saga ends completed or compensated; no
//! service call is repeated except the ones the killed process had in flight; nothing stalls
//! beyond one lease compared with a run without faults.
#![cfg(feature = "fleet-worker")]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::postgres::{DATABASE_URL, TestSchema};
use event_bus_core::{BusSettings, EventBus, EventEnvelope};
use sqlx::PgPool;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use uuid::Uuid;

const WORKER: &str = env!("CARGO_BIN_EXE_saga-fleet-worker");
const SAGAS: u64 = 1_000;
const LEASE_SECONDS: u64 = 3;
const DEADLINE: Duration = Duration::from_secs(120);

/// Printed lines of one stream of a process, shared with the task reading them.
type Lines = Arc<Mutex<Vec<String>>>;

fn read_lines(stream: impl AsyncRead + Unpin + Send + 'static) -> (Lines, JoinHandle<()>) {
    let lines = Lines::default();
    let sink = lines.clone();
    let task = tokio::spawn(async move {
        let mut reader = BufReader::new(stream).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            sink.lock().unwrap().push(line);
        }
    });
    (lines, task)
}

struct Worker {
    child: Child,
    stdout: Lines,
    stderr: Lines,
    readers: Vec<JoinHandle<()>>,
}

/// What a worker printed, once it is gone.
struct Printed {
    stdout: Vec<String>,
    stderr: Vec<String>,
}

impl Worker {
    fn spawn(schema: &str, prefix: &str) -> Self {
        let mut child = Command::new(WORKER)
            .env("SAGA_DATABASE_URL", DATABASE_URL)
            .env("SAGA_DATABASE_SCHEMA", schema)
            .env("SAGA_LEASE_SECONDS", LEASE_SECONDS.to_string())
            .env("SAGA_RETRY_INITIAL_BACKOFF_MS", "5")
            .env("EVENT_BUS_TYPE", "redis")
            .env("EVENT_BUS_TOPIC_PREFIX", prefix)
            .env("EVENT_BUS_ACK_DEADLINE_SECONDS", "2")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the worker binary starts");
        let (stdout, out_task) = read_lines(child.stdout.take().expect("piped"));
        let (stderr, err_task) = read_lines(child.stderr.take().expect("piped"));
        Self {
            child,
            stdout,
            stderr,
            readers: vec![out_task, err_task],
        }
    }

    /// Waits for `ready <n>`; returns n.
    async fn ready(&self) -> usize {
        let started = Instant::now();
        loop {
            let ready = self
                .stdout
                .lock()
                .unwrap()
                .iter()
                .find_map(|line| line.strip_prefix("ready ").map(str::to_owned));
            if let Some(n) = ready {
                return n.parse().expect("a count");
            }
            assert!(
                started.elapsed() < DEADLINE,
                "worker not ready; stderr: {:?}",
                self.stderr.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILLs the process and collects everything it printed.
    async fn kill(mut self) -> Printed {
        self.child.kill().await.expect("SIGKILL the worker");
        for reader in self.readers {
            reader.await.expect("reader");
        }
        Printed {
            stdout: self.stdout.lock().unwrap().clone(),
            stderr: self.stderr.lock().unwrap().clone(),
        }
    }
}

async fn count(pool: &PgPool, schema: &str, statuses: &[&str]) -> i64 {
    sqlx::query_scalar(&format!(
        r#"SELECT count(*) FROM "{schema}".sagas WHERE status = ANY($1)"#
    ))
    .bind(statuses)
    .fetch_one(pool)
    .await
    .unwrap()
}

const FINISHED: [&str; 3] = ["completed", "compensated", "failed"];

/// Waits until at least `n` sagas are finished.
async fn finished_at_least(pool: &PgPool, schema: &str, n: u64, started: Instant) {
    while count(pool, schema, &FINISHED).await < n as i64 {
        if started.elapsed() > DEADLINE {
            let unfinished: Vec<(String, bool, bool, i64)> = sqlx::query_as(&format!(
                r#"SELECT status, owner IS NULL, lease_expires_at < now(), count(*)
                   FROM "{schema}".sagas WHERE NOT status = ANY($1) GROUP BY 1, 2, 3"#
            ))
            .bind(&FINISHED[..])
            .fetch_all(pool)
            .await
            .unwrap();
            let stored = count(pool, schema, &["running", "compensating"]).await
                + count(pool, schema, &FINISHED).await;
            panic!(
                "fewer than {n} sagas finished within {DEADLINE:?}; {stored} stored; unfinished \
                 (status, free, expired, count): {unfinished:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One service call: saga, step, phase and attempt.
type Call = (Uuid, String, String, u32);

fn calls(printed: &Printed) -> Vec<Call> {
    printed
        .stdout
        .iter()
        .filter_map(|line| line.strip_prefix("call "))
        .map(|call| {
            let fields: Vec<&str> = call.split(' ').collect();
            (
                fields[0].parse().expect("saga id"),
                fields[1].to_owned(),
                fields[2].to_owned(),
                fields[3].parse().expect("attempt"),
            )
        })
        .collect()
}

/// What one run measured.
struct Run {
    elapsed: Duration,
    in_flight_rerun: usize,
}

/// Publishes the 1,000 triggers over four seconds while the workers run; with `faults`, a
/// third worker starts when half the sagas are done and the first is killed at two thirds.
async fn run(faults: bool) -> Run {
    let schema = TestSchema::new();
    let repository = schema.repository().await;
    let pool = repository.pool().clone();
    let prefix = format!("saga-fleet-{}", Uuid::now_v7().simple());
    let bus: EventBus = event_bus_brokers::connect(
        BusSettings::from_vars([
            ("EVENT_BUS_TYPE", "redis"),
            ("EVENT_BUS_TOPIC_PREFIX", prefix.as_str()),
        ])
        .unwrap(),
    )
    .await
    .expect("Redis on 127.0.0.1:6379");

    let first = Worker::spawn(&schema.name, &prefix);
    let second = Worker::spawn(&schema.name, &prefix);
    assert_eq!(first.ready().await, 0);
    assert_eq!(second.ready().await, 0);

    let started = Instant::now();
    let publisher = tokio::spawn(async move {
        for n in 0..SAGAS {
            let trigger = EventEnvelope::builder("fleet.requested", serde_json::json!({ "n": n }))
                .idempotency_key(format!("fleet-{n}"))
                .build();
            bus.publish(&trigger).await.expect("publish a trigger");
            if n % 50 == 49 {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        bus
    });

    let mut first = Some(first);
    let mut killed = None;
    let mut third = None;
    if faults {
        finished_at_least(&pool, &schema.name, SAGAS / 2, started).await;
        let newcomer = Worker::spawn(&schema.name, &prefix);
        assert_eq!(
            newcomer.ready().await,
            0,
            "resume() takes no saga whose owner is alive"
        );
        third = Some(newcomer);
        finished_at_least(&pool, &schema.name, SAGAS * 2 / 3, started).await;
        killed = Some(first.take().expect("running").kill().await);
    }
    finished_at_least(&pool, &schema.name, SAGAS, started).await;
    let elapsed = started.elapsed();
    let bus = publisher.await.unwrap();
    bus.shutdown().await.unwrap();

    let mut survivors = vec![second.kill().await];
    for worker in [first, third].into_iter().flatten() {
        survivors.push(worker.kill().await);
    }
    let killed_calls = killed.as_ref().map(calls).unwrap_or_default();

    assert_eq!(count(&pool, &schema.name, &["completed"]).await, 900);
    assert_eq!(count(&pool, &schema.name, &["compensated"]).await, 100);
    assert_eq!(count(&pool, &schema.name, &["failed"]).await, 0);
    for printed in &survivors {
        for line in &printed.stderr {
            assert!(
                !line.contains("pool timed out") && !line.contains("saga store failed"),
                "{line}"
            );
        }
    }

    // Every attempt the step log shows an outcome for was one call; a call without an
    // outcome was in flight in the killed process.
    let log: Vec<(Uuid, String, String, i32, String)> = sqlx::query_as(&format!(
        r#"SELECT saga_id, step, phase, attempt, outcome FROM "{}".saga_steps"#,
        schema.name
    ))
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut outcomes: HashMap<Call, Vec<String>> = HashMap::new();
    for (saga, step, phase, attempt, outcome) in log {
        outcomes
            .entry((saga, step, phase, attempt as u32))
            .or_default()
            .push(outcome);
    }
    let mut made: BTreeMap<Call, (usize, usize)> = BTreeMap::new();
    for call in survivors.iter().flat_map(calls) {
        made.entry(call).or_default().0 += 1;
    }
    for call in killed_calls {
        made.entry(call).or_default().1 += 1;
    }
    let mut in_flight_rerun = 0;
    for (call, (by_survivors, by_killed)) in &made {
        assert_eq!(by_survivors + by_killed, 1, "{call:?} called twice");
        let recorded = outcomes.get(call).cloned().unwrap_or_default();
        assert_eq!(
            recorded.iter().filter(|o| *o == "started").count(),
            1,
            "{call:?}: {recorded:?}"
        );
        if recorded.len() == 1 {
            assert_eq!(
                *by_killed, 1,
                "{call:?} has no outcome but its process lives"
            );
            in_flight_rerun += 1;
        }
    }
    for (attempt, recorded) in &outcomes {
        if recorded.len() > 1 {
            assert!(made.contains_key(attempt), "{attempt:?} never called");
        }
    }
    Run {
        elapsed,
        in_flight_rerun,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_deploy_with_a_crash_runs_every_saga_to_its_end_without_repeats_or_stalls() {
    let baseline = run(false).await;
    assert_eq!(baseline.in_flight_rerun, 0);
    let faulty = run(true).await;
    println!(
        "1,000 sagas: {:.1} s with two instances; {:.1} s with a third started halfway and one \
         killed at two thirds ({} service calls in flight in the killed process ran again)",
        baseline.elapsed.as_secs_f64(),
        faulty.elapsed.as_secs_f64(),
        faulty.in_flight_rerun
    );
    let allowance = Duration::from_secs(LEASE_SECONDS + 5);
    assert!(
        faulty.elapsed <= baseline.elapsed + allowance,
        "stalled: {:?} against {:?} without faults",
        faulty.elapsed,
        baseline.elapsed
    );
}
