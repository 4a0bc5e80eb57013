//! Consumer processes (the `dedup-consumer-worker` binary) in one consumer group, and what
//! they printed.

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const WORKER: &str = env!("CARGO_BIN_EXE_dedup-consumer-worker");

/// What the workers printed.
#[derive(Default)]
pub struct Seen {
    /// Workers subscribed.
    pub ready: usize,
    /// Handler starts: worker and event id.
    pub started: Vec<(usize, String)>,
    /// Handler completions: worker and event id.
    pub handled: Vec<(usize, String)>,
    /// Each worker's latest settled and dead-lettered counts.
    pub settled: HashMap<usize, (u64, u64)>,
}

impl Seen {
    /// Event ids whose handler `worker` started.
    pub fn started_by(&self, worker: usize) -> Vec<&str> {
        ids_of(&self.started, worker)
    }

    /// Event ids whose handler `worker` finished.
    pub fn handled_by(&self, worker: usize) -> Vec<&str> {
        ids_of(&self.handled, worker)
    }

    /// Distinct event ids handled by any worker.
    pub fn distinct_handled(&self) -> HashSet<&str> {
        self.handled.iter().map(|(_, id)| id.as_str()).collect()
    }

    /// Deliveries settled by all workers.
    pub fn settled(&self) -> u64 {
        self.settled.values().map(|(n, _)| n).sum()
    }

    /// Deliveries dead-lettered by all workers.
    pub fn dead_lettered(&self) -> u64 {
        self.settled.values().map(|(_, m)| m).sum()
    }
}

fn ids_of(lines: &[(usize, String)], worker: usize) -> Vec<&str> {
    lines
        .iter()
        .filter(|(w, _)| *w == worker)
        .map(|(_, id)| id.as_str())
        .collect()
}

/// Worker processes sharing the settings `vars`.
pub struct Workers {
    vars: Vec<(String, String)>,
    seen: Arc<Mutex<Seen>>,
    children: Vec<Option<Child>>,
}

impl Workers {
    /// No workers yet; each one started gets `vars`.
    pub fn new(vars: &[(&str, String)]) -> Self {
        Self {
            vars: vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            seen: Arc::default(),
            children: Vec::new(),
        }
    }

    /// Starts one more worker with `extra` settings; returns its number (from 0).
    pub fn start(&mut self, extra: &[(&str, &str)]) -> usize {
        let worker = self.children.len();
        let mut child = Command::new(WORKER)
            .envs(self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(extra.iter().copied())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the worker");
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let seen = Arc::clone(&self.seen);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut seen = seen.lock().unwrap();
                let words: Vec<&str> = line.split_whitespace().collect();
                match words.as_slice() {
                    ["ready"] => seen.ready += 1,
                    ["started", id] => seen.started.push((worker, (*id).to_owned())),
                    ["handled", id] => seen.handled.push((worker, (*id).to_owned())),
                    ["settled", n, "dead-lettered", m] => {
                        let counts = (n.parse().unwrap(), m.parse().unwrap());
                        seen.settled.insert(worker, counts);
                    }
                    _ => {}
                }
            }
        });
        self.children.push(Some(child));
        worker
    }

    /// What the workers printed so far.
    pub fn seen(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().unwrap()
    }

    /// Waits until `done` holds for what the workers printed; fails after `within`.
    pub async fn wait_for(&self, what: &str, within: Duration, done: impl Fn(&Seen) -> bool) {
        let started = Instant::now();
        while !done(&self.seen()) {
            assert!(started.elapsed() < within, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills `worker` with SIGKILL and waits until it is gone.
    pub async fn kill(&mut self, worker: usize) {
        let mut child = self.children[worker].take().expect("a running worker");
        child.start_kill().expect("SIGKILL the worker");
        let status = child.wait().await.expect("the killed worker's status");
        assert!(!status.success(), "the worker was killed, not stopped");
    }

    /// Stops every running worker by closing its input; each must exit cleanly.
    pub async fn stop_all(&mut self) {
        for child in self.children.iter_mut().flatten() {
            drop(child.stdin.take());
        }
        for child in self.children.iter_mut().filter_map(Option::take) {
            let mut child = child;
            assert!(child.wait().await.unwrap().success(), "a worker failed");
        }
    }
}

/// The settings of a consumer group on `backend` (under a topic prefix of its own) that
/// deduplicates in `dedup_store`, with an ack deadline of `ack_deadline_seconds` where the
/// backend has one. The broker's address comes from its usual variable, or the local default.
pub fn group_settings(
    backend: &str,
    dedup_store: &str,
    ack_deadline_seconds: u32,
) -> Vec<(&'static str, String)> {
    let prefix = format!("workers-{backend}-{}", uuid::Uuid::now_v7().simple());
    let mut vars = vec![
        ("EVENT_BUS_TYPE", backend.to_owned()),
        ("EVENT_BUS_TOPIC_PREFIX", prefix),
        ("EVENT_BUS_DEDUP_STORE", dedup_store.to_owned()),
        ("DATABASE_URL", super::database_url()),
        ("EVENT_STORE_SCHEMA", super::unique_schema()),
        (
            "EVENT_BUS_ACK_DEADLINE_SECONDS",
            ack_deadline_seconds.to_string(),
        ),
        ("MAX_CONCURRENT_MESSAGES", "4".to_owned()),
    ];
    let from_env = |name: &'static str, default: &str| {
        (
            name,
            std::env::var(name).unwrap_or_else(|_| default.to_owned()),
        )
    };
    match backend {
        "redis" => vars.push(from_env("REDIS_EVENT_URL", super::REDIS_URL)),
        "rabbitmq" => {
            vars.push(from_env(
                "RABBITMQ_URL",
                "amqp://guest:guest@127.0.0.1:5672/%2f",
            ));
            vars.push(("RABBITMQ_QUEUE_EXPIRES_SECONDS", "300".to_owned()));
        }
        "kafka" => {
            vars.push(from_env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"));
            vars.push(("KAFKA_SESSION_TIMEOUT_MS", "6000".to_owned()));
        }
        "pubsub" => {
            vars.push(from_env("PUBSUB_EMULATOR_HOST", "127.0.0.1:8085"));
            vars.push(("GCP_PROJECT_ID", "worker-tests".to_owned()));
        }
        "nats" => vars.push(from_env("NATS_URL", "nats://127.0.0.1:4222")),
        other => panic!("no settings for backend {other}"),
    }
    vars
}
