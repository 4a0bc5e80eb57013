//! Several outbox relays on one PostgreSQL outbox, publishing to real Redis: they share the
//! work without publishing an entry twice and keep each aggregate's order; a relay process
//! killed with SIGKILL mid-run loses nothing, and what is published twice is only what it had
//! published without marking (at most its one batch).
#![cfg(feature = "relay-worker")]

mod common;

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use event_bus_core::{BusSettings, EventBus, EventEnvelope};
use event_store::outbox::{Outbox, OutboxRelay};
use event_store::store::{ExpectedVersion, StreamId};
use event_store_postgres::PgEventStore;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const WORKER: &str = env!("CARGO_BIN_EXE_outbox-relay-worker");
const EVENTS: usize = 2_000;
const AGGREGATES: usize = 50;
const PER_APPEND: usize = 5;
const BATCH: usize = 50;
const DEADLINE: Duration = Duration::from_secs(60);

async fn bus(prefix: &str) -> EventBus {
    let settings = BusSettings::from_vars([
        ("EVENT_BUS_TYPE", "redis"),
        ("REDIS_EVENT_URL", common::REDIS_URL),
        ("EVENT_BUS_TOPIC_PREFIX", prefix),
    ])
    .unwrap();
    event_bus_brokers::connect(settings)
        .await
        .expect("connect to Redis on 127.0.0.1:6379")
}

/// Appends the events: appends of five, round robin over the aggregates.
async fn append_all(store: &PgEventStore) -> Vec<String> {
    let mut ids = Vec::with_capacity(EVENTS);
    for append in 0..EVENTS / PER_APPEND {
        let aggregate = format!("o-{}", append % AGGREGATES);
        let events: Vec<EventEnvelope> = (0..PER_APPEND)
            .map(|n| EventEnvelope::builder("order.placed", serde_json::json!({ "n": n })).build())
            .collect();
        ids.extend(events.iter().map(|e| e.id.clone()));
        store
            .append_and_enqueue(
                &StreamId::new("order", aggregate),
                ExpectedVersion::Any,
                events,
            )
            .await
            .unwrap();
    }
    ids
}

async fn unpublished(store: &PgEventStore) -> usize {
    store.pending(EVENTS + 1).await.unwrap().len()
}

async fn wait_until_published(store: &PgEventStore, started: Instant) {
    while unpublished(store).await > 0 {
        assert!(started.elapsed() < DEADLINE, "not all published in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The events in the Redis stream, in stream order.
async fn stream(topic: &str) -> Vec<EventEnvelope> {
    let mut redis = common::redis().await;
    let entries: Vec<(String, Vec<Vec<u8>>)> = redis::cmd("XRANGE")
        .arg(topic)
        .arg("-")
        .arg("+")
        .query_async(&mut redis)
        .await
        .unwrap();
    let _: i64 = redis::cmd("DEL")
        .arg(topic)
        .query_async(&mut redis)
        .await
        .unwrap();
    entries
        .into_iter()
        .map(|(_, fields)| {
            let payload = fields
                .chunks(2)
                .find(|pair| pair[0] == b"payload")
                .map(|pair| pair[1].clone())
                .expect("a payload field");
            serde_json::from_slice(&payload).expect("an envelope")
        })
        .collect()
}

/// Checks that every appended event arrived and that each aggregate's events first arrived
/// in version order; returns the events that arrived twice.
fn check(appended: &[String], arrived: &[EventEnvelope]) -> HashSet<String> {
    let mut times: HashMap<String, usize> = HashMap::new();
    let mut last_version: HashMap<&str, u64> = HashMap::new();
    for event in arrived {
        let seen = times.entry(event.id.clone()).or_default();
        *seen += 1;
        if *seen == 1 {
            let last = last_version.entry(&event.aggregate_id).or_default();
            assert_eq!(
                event.aggregate_version,
                *last + 1,
                "aggregate {} out of order",
                event.aggregate_id
            );
            *last = event.aggregate_version;
        }
    }
    let lost = appended
        .iter()
        .filter(|id| !times.contains_key(*id))
        .count();
    assert_eq!(lost, 0, "events lost");
    assert_eq!(times.len(), appended.len(), "events nobody appended");
    assert!(
        times.values().all(|&n| n <= 2),
        "an event published 3 times"
    );
    times
        .into_iter()
        .filter(|&(_, n)| n > 1)
        .map(|(id, _)| id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_relays_share_the_outbox_publishing_each_event_once_in_aggregate_order() {
    let store = common::store(0).await;
    let prefix = format!("evbus-relays-{}", Uuid::now_v7().simple());
    let bus = bus(&prefix).await;
    let shutdown = CancellationToken::new();
    let mut relays = Vec::new();
    for _ in 0..3 {
        let own = PgEventStore::connect(&common::database_url(), store.schema().name())
            .await
            .unwrap();
        let relay = OutboxRelay::for_bus(Arc::new(own), &bus).batch_size(BATCH);
        let shutdown = shutdown.clone();
        relays.push(tokio::spawn(async move {
            relay.run(Duration::from_millis(10), shutdown).await;
        }));
    }
    let started = Instant::now();
    let appended = append_all(&store).await;
    wait_until_published(&store, started).await;
    shutdown.cancel();
    for relay in relays {
        relay.await.unwrap();
    }
    let relayed_by: HashSet<Option<Uuid>> = sqlx::query_scalar(&format!(
        "SELECT DISTINCT claimed_by FROM \"{}\".outbox",
        store.schema().name()
    ))
    .fetch_all(store.pool())
    .await
    .unwrap()
    .into_iter()
    .collect();
    let arrived = stream(&bus.topics().topic("order.placed")).await;
    let twice = check(&appended, &arrived);
    assert_eq!(twice.len(), 0, "published twice: {twice:?}");
    assert_eq!(arrived.len(), EVENTS);
    println!(
        "{EVENTS} events, 3 relays ({} took part): 0 duplicates",
        relayed_by.len()
    );
    bus.shutdown().await.unwrap();
}

/// Printed lines of a worker, shared with the task reading them.
type Lines = Arc<Mutex<Vec<String>>>;

struct Worker {
    child: Child,
    lines: Lines,
    reader: JoinHandle<()>,
}

impl Worker {
    fn spawn(schema: &str, prefix: &str) -> Self {
        let mut child = Command::new(WORKER)
            .args([&common::database_url(), schema])
            .env("EVENT_BUS_TYPE", "redis")
            .env("REDIS_EVENT_URL", common::REDIS_URL)
            .env("EVENT_BUS_TOPIC_PREFIX", prefix)
            .env("RELAY_BATCH_SIZE", BATCH.to_string())
            .env("RELAY_LEASE_MS", "2000")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the relay worker starts");
        let stdout = child.stdout.take().expect("piped");
        let lines = Lines::default();
        let sink = lines.clone();
        let reader = tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        Self {
            child,
            lines,
            reader,
        }
    }

    fn printed(&self, prefix: &str) -> usize {
        let lines = self.lines.lock().unwrap();
        lines.iter().filter(|l| l.starts_with(prefix)).count()
    }

    async fn wait_for(&self, prefix: &str, at_least: usize) {
        let started = Instant::now();
        while self.printed(prefix) < at_least {
            assert!(started.elapsed() < DEADLINE, "no `{prefix}` from the relay");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// SIGKILLs it; returns the events it was about to publish or published.
    async fn kill(mut self) -> Vec<String> {
        self.child.kill().await.expect("SIGKILL the relay");
        self.reader.await.unwrap();
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .filter_map(|line| line.strip_prefix("publish "))
            .map(str::to_owned)
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_killed_mid_run_loses_nothing_and_duplicates_at_most_its_batch() {
    let store = common::store(0).await;
    let prefix = format!("evbus-relays-{}", Uuid::now_v7().simple());
    let bus = bus(&prefix).await;
    let schema = store.schema().name().to_owned();
    let workers: Vec<Worker> = (0..3).map(|_| Worker::spawn(&schema, &prefix)).collect();
    for worker in &workers {
        worker.wait_for("ready", 1).await;
    }
    let started = Instant::now();
    let appender = {
        let store = store.clone();
        tokio::spawn(async move { append_all(&store).await })
    };
    let mut workers = workers.into_iter();
    let victim = workers.next().unwrap();
    // Mid-run, and right as the victim publishes: most likely inside one of its batches.
    victim.wait_for("publish", EVENTS / 10).await;
    let seen = victim.printed("publish");
    victim.wait_for("publish", seen + 1).await;
    let victim_published: HashSet<String> = victim.kill().await.into_iter().collect();
    let appended = appender.await.unwrap();
    wait_until_published(&store, started).await;

    let mut survivors_published: HashMap<String, usize> = HashMap::new();
    for worker in workers {
        for id in worker.kill().await {
            *survivors_published.entry(id).or_default() += 1;
        }
    }
    let arrived = stream(&bus.topics().topic("order.placed")).await;
    let twice = check(&appended, &arrived);
    assert!(
        survivors_published.values().all(|&n| n == 1),
        "a surviving relay published an event twice"
    );
    for id in &twice {
        assert!(
            victim_published.contains(id),
            "{id} published twice, but not by the killed relay"
        );
    }
    assert!(twice.len() <= BATCH, "{} duplicates", twice.len());
    println!(
        "{EVENTS} events, 3 relay processes, one killed after publishing {}: 0 lost, {} published twice",
        victim_published.len(),
        twice.len()
    );
    bus.shutdown().await.unwrap();
}
