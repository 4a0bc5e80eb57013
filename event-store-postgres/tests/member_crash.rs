//! What a consumer group does when a member dies or is slow, with real consumer processes on
//! every backend with consumer groups (Redis, RabbitMQ, Kafka, Pub/Sub, NATS):
//! - a member killed with SIGKILL while its handlers hold events: a member started after it
//!   handles every one of them, once, and dead-letters none, whether the group deduplicates
//!   in process memory (the default) or in a shared store (PostgreSQL, or Redis);
//! - a handler slower than the ack deadline, with two members deduplicating in process memory:
//!   each event is handled once, because the member keeps the broker's lease while its handler
//!   runs, and none is dead-lettered.
#![cfg(feature = "dedup-worker")]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::workers::{Workers, group_settings};
use event_bus_core::{BusSettings, EventBus, EventEnvelope};

/// Long enough for any backend to hand a dead member's events to another one.
const WITHIN: Duration = Duration::from_secs(120);

async fn publisher(vars: &[(&str, String)]) -> EventBus {
    let settings = BusSettings::from_vars(vars.iter().map(|(k, v)| (*k, v.clone()))).unwrap();
    event_store_postgres::connect_bus(settings)
        .await
        .expect("connect the publisher")
}

/// Publishes `count` distinct events; returns their ids.
async fn publish(bus: &EventBus, count: usize) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for n in 0..count {
        let event = EventEnvelope::builder("order.placed", serde_json::json!({ "n": n }))
            .aggregate("order", format!("o-{n}"), 1)
            .build();
        bus.publish(&event).await.unwrap();
        ids.insert(event.id.to_string());
    }
    ids
}

/// A member holding events in its handlers is killed; the member started after it handles
/// every event once.
async fn a_killed_members_events_are_handled_once_by_the_next(
    backend: &str,
    dedup_store: &str,
    ack_deadline_seconds: u32,
) {
    const EVENTS: usize = 12;
    let vars = group_settings(backend, dedup_store, ack_deadline_seconds);
    let mut workers = Workers::new(&vars);
    let victim = workers.start(&[("TEST_HANDLER_MILLIS", "600000")]);
    workers
        .wait_for("the first member ready", WITHIN, |s| s.ready == 1)
        .await;
    let bus = publisher(&vars).await;
    let ids = publish(&bus, EVENTS).await;
    // MAX_CONCURRENT_MESSAGES is 4: the member is busy with four events and holds more.
    workers
        .wait_for("the first member busy", WITHIN, |s| {
            s.started_by(victim).len() == 4
        })
        .await;
    workers.kill(victim).await;

    let survivor = workers.start(&[]);
    workers
        .wait_for("every event handled by the next member", WITHIN, |s| {
            s.handled_by(survivor).len() >= EVENTS
        })
        .await;
    workers.stop_all().await;
    bus.shutdown().await.unwrap();

    let seen = workers.seen();
    let handled = seen.handled_by(survivor);
    let distinct: BTreeSet<String> = handled.iter().map(|id| (*id).to_owned()).collect();
    assert_eq!(distinct, ids, "every event handled by the next member");
    assert_eq!(handled.len(), EVENTS, "each handled once: {handled:?}");
    assert!(
        seen.handled_by(victim).is_empty(),
        "the killed member finished nothing"
    );
    assert_eq!(seen.dead_lettered(), 0, "none dead-lettered");
}

/// Two members whose handler takes two and a half ack deadlines handle each event once.
async fn a_handler_slower_than_the_ack_deadline_runs_once(
    backend: &str,
    ack_deadline_seconds: u32,
) {
    const EVENTS: usize = 3;
    let mut vars = group_settings(backend, "memory", ack_deadline_seconds);
    vars.push(("WORKER_TIMEOUT", "120".to_owned()));
    let takes = (ack_deadline_seconds * 2500).to_string();
    let mut workers = Workers::new(&vars);
    workers.start(&[("TEST_HANDLER_MILLIS", &takes)]);
    workers.start(&[("TEST_HANDLER_MILLIS", &takes)]);
    workers
        .wait_for("both members ready", WITHIN, |s| s.ready == 2)
        .await;
    let bus = publisher(&vars).await;
    let ids = publish(&bus, EVENTS).await;
    workers
        .wait_for("every event settled", WITHIN, |s| {
            s.settled() >= EVENTS as u64
        })
        .await;
    workers.stop_all().await;
    bus.shutdown().await.unwrap();

    let seen = workers.seen();
    let started: Vec<&str> = seen.started.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(
        started.len(),
        EVENTS,
        "each handler started once: {started:?}"
    );
    let distinct: BTreeSet<String> = started.iter().map(|id| (*id).to_owned()).collect();
    assert_eq!(distinct, ids);
    assert_eq!(seen.handled.len(), EVENTS, "each handled once");
    assert_eq!(seen.dead_lettered(), 0, "none dead-lettered");
}

#[tokio::test]
async fn redis_killed_member_default_dedup() {
    a_killed_members_events_are_handled_once_by_the_next("redis", "redis", 2).await;
}

#[tokio::test]
async fn redis_killed_member_memory_dedup() {
    a_killed_members_events_are_handled_once_by_the_next("redis", "memory", 2).await;
}

#[tokio::test]
async fn redis_killed_member_postgres_dedup() {
    a_killed_members_events_are_handled_once_by_the_next("redis", "postgres", 2).await;
}

#[tokio::test]
async fn rabbitmq_killed_member_memory_dedup() {
    a_killed_members_events_are_handled_once_by_the_next("rabbitmq", "memory", 2).await;
}

#[tokio::test]
async fn rabbitmq_killed_member_postgres_dedup() {
    a_killed_members_events_are_handled_once_by_the_next("rabbitmq", "postgres", 2).await;
}

#[tokio::test]
async fn kafka_killed_member_memory_dedup() {
    a_killed_members_events_are_handled_once_by_the_next("kafka", "memory", 2).await;
}

#[tokio::test]
async fn kafka_killed_member_postgres_dedup() {
    a_killed_members_events_are_handled_once_by_the_next("kafka", "postgres", 2).await;
}

#[tokio::test]
async fn pubsub_killed_member_memory_dedup() {
    a_killed_members_events_are_handled_once_by_the_next("pubsub", "memory", 10).await;
}

#[tokio::test]
async fn pubsub_killed_member_postgres_dedup() {
    a_killed_members_events_are_handled_once_by_the_next("pubsub", "postgres", 10).await;
}

#[tokio::test]
async fn nats_killed_member_memory_dedup() {
    a_killed_members_events_are_handled_once_by_the_next("nats", "memory", 2).await;
}

#[tokio::test]
async fn nats_killed_member_postgres_dedup() {
    a_killed_members_events_are_handled_once_by_the_next("nats", "postgres", 2).await;
}

#[tokio::test]
async fn redis_slow_handler_runs_once() {
    a_handler_slower_than_the_ack_deadline_runs_once("redis", 2).await;
}

#[tokio::test]
async fn rabbitmq_slow_handler_runs_once() {
    a_handler_slower_than_the_ack_deadline_runs_once("rabbitmq", 2).await;
}

#[tokio::test]
async fn kafka_slow_handler_runs_once() {
    a_handler_slower_than_the_ack_deadline_runs_once("kafka", 2).await;
}

#[tokio::test]
async fn pubsub_slow_handler_runs_once() {
    a_handler_slower_than_the_ack_deadline_runs_once("pubsub", 10).await;
}

#[tokio::test]
async fn nats_slow_handler_runs_once() {
    a_handler_slower_than_the_ack_deadline_runs_once("nats", 2).await;
}

/// Redis has no expiring consumer groups: the instance-scoped group of a member killed with
/// SIGKILL is removed by a live member's heartbeat once three ack deadlines passed, and a
/// member that stops cleanly removes its own.
#[tokio::test]
async fn redis_killed_owners_instance_scoped_group_is_removed() {
    let vars = group_settings("redis", "memory", 1);
    let names = BusSettings::from_vars(vars.iter().map(|(k, v)| (*k, v.clone())))
        .unwrap()
        .topic_names();
    let stream = names.topic("order.placed");
    let groups = || async {
        let mut redis = common::redis().await;
        let info: redis::Value = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(&stream)
            .query_async(&mut redis)
            .await
            .unwrap();
        let redis::Value::Array(groups) = info else {
            panic!("XINFO GROUPS answered {info:?}");
        };
        groups
            .iter()
            .filter_map(|group| match group {
                redis::Value::Map(fields) => group_name(fields.iter().map(|(k, v)| (k, v))),
                redis::Value::Array(fields) => group_name(
                    fields
                        .chunks(2)
                        .filter_map(|pair| Some((pair.first()?, pair.get(1)?))),
                ),
                _ => None,
            })
            .collect::<BTreeSet<String>>()
    };
    let dead = names.handler_subscription("order.placed", "tail-dead");
    let live = names.handler_subscription("order.placed", "tail-live");

    let mut workers = Workers::new(&vars);
    let owner = workers.start(&[("TEST_EPHEMERAL_HANDLER", "tail-dead")]);
    workers
        .wait_for("the owner ready", WITHIN, |s| s.ready == 1)
        .await;
    assert_eq!(groups().await, BTreeSet::from([dead.clone()]));
    workers.kill(owner).await;

    workers.start(&[("TEST_EPHEMERAL_HANDLER", "tail-live")]);
    workers
        .wait_for("the next member ready", WITHIN, |s| s.ready == 2)
        .await;
    let started = std::time::Instant::now();
    while groups().await.contains(&dead) {
        assert!(
            started.elapsed() < WITHIN,
            "the dead owner's group is still there"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(groups().await, BTreeSet::from([live]));
    workers.stop_all().await;
    assert_eq!(
        groups().await,
        BTreeSet::new(),
        "a clean stop removes its own group"
    );
}

/// The `name` field of an `XINFO GROUPS` entry (a map in RESP3, pairs in RESP2).
fn group_name<'a>(
    mut fields: impl Iterator<Item = (&'a redis::Value, &'a redis::Value)>,
) -> Option<String> {
    fields.find_map(|field| match field {
        (redis::Value::BulkString(k), redis::Value::BulkString(v)) if k.as_slice() == b"name" => {
            Some(String::from_utf8_lossy(v).into_owned())
        }
        _ => None,
    })
}
