//! Two consumer processes in one consumer group, deduplicating in PostgreSQL
//! (`EVENT_BUS_DEDUP_STORE=postgres`): ten events, each published twice, are handled exactly ten
//! times in all, on RabbitMQ, and on Kafka when a broker listens at `KAFKA_BOOTSTRAP_SERVERS`
//! (default 127.0.0.1:9092; skipped otherwise).
#![cfg(feature = "dedup-worker")]

mod common;

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use event_bus_core::{BusSettings, EventEnvelope};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const WORKER: &str = env!("CARGO_BIN_EXE_dedup-consumer-worker");
const EVENTS: usize = 10;

/// What the workers printed: handler runs, and each one's latest settled and dead-lettered
/// counts.
#[derive(Default)]
struct Seen {
    handled: Vec<String>,
    ready: usize,
    settled: HashMap<usize, (u64, u64)>,
}

fn start(worker: usize, vars: &[(&str, String)], seen: &Arc<Mutex<Seen>>) -> Child {
    let mut child = Command::new(WORKER)
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the worker");
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let seen = Arc::clone(seen);
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let mut seen = seen.lock().unwrap();
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["ready"] => seen.ready += 1,
                ["handled", id] => seen.handled.push((*id).to_owned()),
                ["settled", n, "dead-lettered", m] => {
                    let counts = (n.parse().unwrap(), m.parse().unwrap());
                    seen.settled.insert(worker, counts);
                }
                _ => {}
            }
        }
    });
    child
}

async fn wait_for(seen: &Arc<Mutex<Seen>>, what: &str, done: impl Fn(&Seen) -> bool) {
    let started = Instant::now();
    while !done(&seen.lock().unwrap()) {
        assert!(
            started.elapsed() < common::TIMEOUT * 2,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Runs two workers on `backend`, publishes every event twice, and checks each was handled
/// once.
async fn two_consumers_handle_duplicates_once(backend: &str, extra: &[(&str, &str)]) {
    let prefix = format!("dedup-{backend}-{}", uuid::Uuid::now_v7().simple());
    let mut vars = vec![
        ("EVENT_BUS_TYPE", backend.to_owned()),
        ("EVENT_BUS_TOPIC_PREFIX", prefix),
        ("EVENT_BUS_DEDUP_STORE", "postgres".to_owned()),
        ("DATABASE_URL", common::database_url()),
        ("EVENT_STORE_SCHEMA", common::unique_schema()),
        // The claim lease follows the time limit: a copy that finds its key claimed comes back
        // after two seconds rather than thirty.
        ("WORKER_TIMEOUT", "2".to_owned()),
    ];
    vars.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut workers: Vec<Child> = (0..2).map(|n| start(n, &vars, &seen)).collect();
    wait_for(&seen, "both workers ready", |s| s.ready == 2).await;

    let publisher =
        event_store_postgres::connect_bus(BusSettings::from_vars(vars.clone()).unwrap())
            .await
            .expect("connect the publisher");
    let events: Vec<EventEnvelope> = (0..EVENTS)
        .map(|n| {
            EventEnvelope::builder("order.placed", serde_json::json!({ "n": n }))
                .aggregate("order", format!("o-{n}"), 1)
                .build()
        })
        .collect();
    for event in &events {
        publisher.publish(event).await.unwrap();
        publisher.publish(event).await.unwrap();
    }
    wait_for(&seen, "every delivery settled", |s| {
        s.settled.values().map(|(n, _)| n).sum::<u64>() >= 2 * EVENTS as u64
    })
    .await;

    for worker in &mut workers {
        drop(worker.stdin.take());
    }
    for worker in &mut workers {
        assert!(worker.wait().await.unwrap().success());
    }
    publisher.shutdown().await.unwrap();
    let seen = seen.lock().unwrap();
    let distinct: HashSet<&String> = seen.handled.iter().collect();
    assert_eq!(distinct.len(), EVENTS, "every event handled");
    assert_eq!(
        seen.handled.len(),
        EVENTS,
        "each handled once: {:?}",
        seen.handled
    );
    assert_eq!(
        seen.settled.values().map(|(_, m)| m).sum::<u64>(),
        0,
        "none dead-lettered"
    );
}

#[tokio::test]
async fn two_rabbitmq_processes_handle_each_duplicated_event_once() {
    two_consumers_handle_duplicates_once("rabbitmq", &[("RABBITMQ_QUEUE_EXPIRES_SECONDS", "300")])
        .await;
}

#[tokio::test]
async fn two_kafka_processes_handle_each_duplicated_event_once() {
    let servers =
        std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".to_owned());
    if std::net::TcpStream::connect(&servers).is_err() {
        eprintln!("no Kafka broker at {servers}; skipped");
        return;
    }
    two_consumers_handle_duplicates_once("kafka", &[("KAFKA_BOOTSTRAP_SERVERS", &servers)]).await;
}
